"""What deleting a StreamQuery removes that owner references cannot: its internal Kafka topics
(repartition and changelog topics of every state identity it had) and its consumer groups.

Bounded in time and never raising: a broker that is down or refuses must not keep the object
in Terminating forever (the finalizer is released either way, and the log says what is left).
The dead-letter topic is kept: it holds the user's bad records, not our internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0


def parse_properties(text: str) -> dict[str, str]:
    """librdkafka client properties (`key=value` lines, `#` comments), as the pods read them."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def internal_topics(topics: Iterable[str], identities: Iterable[str]) -> list[str]:
    """The query's repartition and changelog topics among `topics` (never its dead letters)."""
    prefixes = tuple(f"streamhouse-{identity}-" for identity in identities if identity)
    return sorted(
        topic for topic in topics if topic.startswith(prefixes) and not topic.endswith("-dlq")
    )


def reason(error: BaseException) -> str:
    """What went wrong, without the message: librdkafka echoes configuration values (secrets
    included) in its messages, so only the error's name is ever logged."""
    if isinstance(error, KafkaException) and error.args:
        code = error.args[0]
        name = getattr(code, "name", None)
        if callable(name):
            return str(name())
    return type(error).__name__


def delete_internal(settings: Mapping[str, str], identities: Iterable[str]) -> list[str]:
    """Delete the internal topics and consumer groups of every identity; returns the topics
    deleted. Never raises."""
    ids = sorted(set(identities))
    deleted: list[str] = []
    try:
        admin = AdminClient({**settings, "socket.timeout.ms": int(TIMEOUT_S * 1000)})
        metadata = admin.list_topics(timeout=TIMEOUT_S)
        doomed = internal_topics(metadata.topics, ids)
        if doomed:
            for topic, future in admin.delete_topics(doomed, operation_timeout=TIMEOUT_S).items():
                try:
                    future.result(timeout=TIMEOUT_S)
                    deleted.append(topic)
                except (KafkaException, TimeoutError) as error:
                    log.warning("could not delete topic %s: %s", topic, reason(error))
        groups = [f"streamhouse-{i}{suffix}" for i in ids for suffix in ("", "-restore")]
        for group, future in admin.delete_consumer_groups(
            groups, request_timeout=TIMEOUT_S
        ).items():
            try:
                future.result(timeout=TIMEOUT_S)
            except (KafkaException, TimeoutError) as error:
                log.info("consumer group %s not deleted: %s", group, reason(error))
    except Exception as error:  # a finalizer must let go, whatever happened
        log.warning("internal topics of %s left behind: %s", ", ".join(ids), reason(error))
    return sorted(deleted)
