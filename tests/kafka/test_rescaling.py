"""Scaling 1 -> 2 -> 1 pods: each partition's state follows it through the changelog, and a pod
that gets a partition back throws away its stale local copy instead of resuming from it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from streamhouse_runtime.io.partitioner import java_partition
from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import latest_totals, order, produce, totals_sql

pytestmark = pytest.mark.kafka

# Two customers on each partition of the 2-partition repartition topic (Kafka's murmur2 of
# the JSON key; "c0".."c3" would all land on partition 0), so both partitions hold state.
NAMES = ("c0", "c1", "c5", "c6")
CUSTOMERS = len(NAMES)


def _orders(first: int, count: int, amount: str) -> tuple[list[bytes], list[bytes]]:
    ids = range(first, first + count)
    return [order(i, amount, NAMES[i % CUSTOMERS]) for i in ids], [b"%d" % i for i in ids]


def _expected(batches: list[tuple[int, int, str]]) -> dict[str, tuple[int, Decimal]]:
    totals = {name: (0, Decimal(0)) for name in NAMES}
    for first, count, amount in batches:
        for i in range(first, first + count):
            n, total = totals[NAMES[i % CUSTOMERS]]
            totals[NAMES[i % CUSTOMERS]] = (n + 1, total + Decimal(amount))
    return totals


def _committed(broker: KafkaBroker, group: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
        return [tp.offset for tp in found]
    finally:
        consumer.close()


def _ends(broker: KafkaBroker, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ends"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in (0, 1)]
    finally:
        consumer.close()


def test_scaling_out_and_back_in_keeps_every_aggregate_exact(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    assert {java_partition(json.dumps(name).encode(), 2) for name in NAMES} == {0, 1}
    source = make_topic("orders", partitions=2)
    out = f"totals_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(totals_sql(source, out))
    query_id = uuid.uuid4().hex[:10]
    batches: list[tuple[int, int, str]] = []

    def pods(replicas: int) -> list[QueryProcess]:
        return [
            QueryProcess(sql_file, tmp_path, bootstrap, query_id, ordinal=o, replicas=replicas)
            for o in range(replicas)
        ]

    def run_batch(first: int, count: int, amount: str) -> None:
        batches.append((first, count, amount))
        produce(bootstrap, source, *_orders(first, count, amount))
        expected = _expected(batches)
        wait_until(lambda: latest_totals(bootstrap, out) == expected, 60, "exact totals")

    one = [pod.start() for pod in pods(1)]
    run_batch(0, 200, "2.50")
    assert all(pod.stop() == 0 for pod in one)

    two = [pod.start() for pod in pods(2)]
    try:
        run_batch(200, 120, "1.25")
    finally:
        assert all(pod.stop() == 0 for pod in reversed(two))  # pod 0 commits last
    # Each pod commits only the partitions it owns: pod 0 must not put back the offset of
    # partition 1 it had from before the scale-out.
    assert _committed(kafka_broker, f"streamhouse-{query_id}", source) == _ends(
        kafka_broker, source
    )

    back = pods(1)[0].start()
    try:
        run_batch(320, 40, "3")
        consumed = back.metric(f'streamhouse_records_in_total{{topic="{source}"')
    finally:
        back.stop()
    assert consumed == 40, "the pod should resume where the group left off, not reprocess"
    assert latest_totals(bootstrap, out) == _expected(batches)
    log = back.log_file.read_text()
    assert "partition 1 is stale" in log, "pod 0 must not resume partition 1 from its old copy"
    assert "partition 0 is stale" not in log, "pod 0 always kept partition 0: its copy is current"
    assert "restored stage-1 partition 1" in log
