"""GET .../tail: the last N records of a query's output topic, for the console's live view.

A throwaway consumer with no group (nothing committed) assigns every partition at
`high watermark - N`, reads up to the high watermarks as they were when it started, and
keeps the newest N by timestamp. Bounded in records (`MAX_RECORDS`) and time (`TAIL_TIMEOUT_S`).
Only for queries whose Kafka needs no credentials: the API's service account reads no Secrets.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from streamhouse_operator.api import schemas

MAX_RECORDS = 200
TAIL_TIMEOUT_S = 5.0


class TailUnavailable(Exception):
    pass


def _decode(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return data.decode()
        except UnicodeDecodeError:
            return base64.b64encode(data).decode()


def tail(bootstrap: str, topic: str, count: int) -> schemas.TailPage:
    count = max(1, min(count, MAX_RECORDS))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "streamhouse-api-tail",  # required by librdkafka; never committed
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "socket.timeout.ms": int(TAIL_TIMEOUT_S * 1000),
        }
    )
    deadline = time.monotonic() + TAIL_TIMEOUT_S
    try:
        metadata = consumer.list_topics(topic, timeout=TAIL_TIMEOUT_S)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise TailUnavailable(f"output topic {topic!r} is not readable")
        wanted: list[TopicPartition] = []
        ends: dict[int, int] = {}
        for partition in described.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TAIL_TIMEOUT_S
            )
            if high > low:
                ends[partition] = high
                wanted.append(TopicPartition(topic, partition, max(low, high - count)))
        records: list[schemas.TailRecord] = []
        if wanted:
            consumer.assign(wanted)
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None
                if offset < ends.get(partition, -1):
                    _, timestamp = message.timestamp()
                    records.append(
                        schemas.TailRecord(
                            partition=partition,
                            offset=offset,
                            timestamp=timestamp,
                            key=_decode(message.key()),
                            value=_decode(message.value()),
                        )
                    )
                if offset >= ends.get(partition, 0) - 1:
                    ends.pop(partition, None)
        records.sort(key=lambda r: (r.timestamp or 0, r.partition, r.offset))
        return schemas.TailPage(topic=topic, records=records[-count:])
    finally:
        consumer.close()
