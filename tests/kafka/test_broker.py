"""Round trips through the real broker: produce, consume, committed offsets, partitioning."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

pytestmark = pytest.mark.kafka


Received = tuple[bytes | None, bytes | None, int | None]


def _consume(consumer: Consumer, count: int, timeout_s: float = 30) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        for message in consumer.consume(count - len(got), 0.5):
            assert message.error() is None, message.error()
            got.append((message.key(), message.value(), message.partition()))
    return got


def test_produce_consume_round_trip_keeps_keys_values_and_key_partitioning(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("roundtrip", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent = {f"key-{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(30)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}-g",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        received = _consume(consumer, len(sent))
    finally:
        consumer.close()

    assert {key: value for key, value, _ in received} == sent
    partitions_of: dict[bytes | None, set[int | None]] = {}
    for received_key, _, partition in received:
        partitions_of.setdefault(received_key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions_of.values())  # one key, one partition
    assert len({p for _, _, p in received}) > 1  # 30 keys spread over partitions


def test_committed_offsets_resume_a_group_where_it_stopped(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("offsets")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0
    settings = {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": f"{topic}-g",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }

    first = Consumer(settings)
    first.assign([TopicPartition(topic, 0)])
    first_values = [value for _, value, _ in _consume(first, 4)]
    first.commit(asynchronous=False)
    first.close()

    second = Consumer(settings)
    second.assign([TopicPartition(topic, 0)])
    committed = second.committed([TopicPartition(topic, 0)], timeout=10)
    rest = [value for _, value, _ in _consume(second, 6)]
    second.close()

    assert committed[0].offset == 4
    assert first_values + rest == [str(i).encode() for i in range(10)]
