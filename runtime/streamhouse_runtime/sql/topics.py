"""Kafka's rules for the topics a query names, checked at validation instead of in the pod.

The rules are the broker's own (`org.apache.kafka.common.internals.Topic.validate`): at most
249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`. Names starting with `__` belong to
Kafka itself (`__consumer_offsets`, `__transaction_state`, KRaft's `__cluster_metadata`), and
`streamhouse-<id>-groupby` / `-changelog` to the runtime's internal state: a query may not
write into either.
"""

from __future__ import annotations

import re

from streamhouse_runtime.sql.errors import ErrorCode

MAX_TOPIC_LENGTH = 249
MAX_PARTITIONS = 10_000
# CreateTopics carries the replication factor as a signed 16-bit integer.
MAX_REPLICAS = 32_767

_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
_RUNTIME_INTERNAL = re.compile(r"streamhouse-.+-(groupby|changelog)")


def topic_problem(topic: str, written: bool) -> tuple[ErrorCode, str] | None:
    """Why `topic` cannot be used (`written`: the query produces to it), or None."""
    shown = repr(topic) if len(topic) <= 60 else repr(topic[:60]) + "..."
    if not topic:
        return ErrorCode.INVALID_TOPIC_NAME, "kafka_topic is empty"
    if len(topic) > MAX_TOPIC_LENGTH:
        return (
            ErrorCode.INVALID_TOPIC_NAME,
            f"kafka_topic {shown} is {len(topic)} characters; Kafka allows at most "
            f"{MAX_TOPIC_LENGTH}",
        )
    if topic in (".", ".."):
        return ErrorCode.INVALID_TOPIC_NAME, f"kafka_topic {shown} is not a valid Kafka topic name"
    if not _LEGAL_TOPIC.fullmatch(topic):
        bad = next(char for char in topic if not _LEGAL_TOPIC.fullmatch(char))
        return (
            ErrorCode.INVALID_TOPIC_NAME,
            f"kafka_topic {shown} contains {bad!r}: Kafka topic names may only contain "
            "ASCII letters, digits, '.', '_' and '-'",
        )
    if topic.startswith("__"):
        return (
            ErrorCode.INTERNAL_TOPIC,
            f"kafka_topic {shown} is internal to Kafka (names starting with '__')",
        )
    if written and _RUNTIME_INTERNAL.fullmatch(topic):
        return (
            ErrorCode.INTERNAL_TOPIC,
            f"kafka_topic {shown} is a StreamHouse internal topic (repartition or changelog); "
            "a query may not write into it",
        )
    return None
