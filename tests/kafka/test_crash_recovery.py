"""A million records, the runtime killed with SIGKILL at random points and restarted again and
again: the aggregates end equal to a reference computed in one pass over the input."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from tests.harness.kafka import KafkaBroker
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka

RECORDS = int(os.environ.get("STREAMHOUSE_CRASH_RECORDS", "1000000"))
CUSTOMERS = 500
KILLS = 6


def _produce_orders(bootstrap: str, topic: str) -> dict[str, tuple[int, Decimal]]:
    """Produce the input and return the one-pass reference: customer -> (count, sum)."""
    rng = random.Random(20261125)
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, Decimal] = defaultdict(Decimal)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
         "queue.buffering.max.messages": 1_000_000, "compression.type": "lz4"}
    )  # fmt: skip
    base = 1_700_000_000_000
    for index in range(RECORDS):
        customer = f"c{rng.randrange(CUSTOMERS)}"
        cents = rng.randrange(1, 500_000)
        amount = Decimal(cents).scaleb(-2)
        counts[customer] += 1
        sums[customer] += amount
        value = (
            f'{{"order_id":{index},"customer_id":"{customer}","amount":{amount},'
            f'"status":"placed","created_at":{base + index}}}'
        )
        while True:
            try:
                producer.produce(topic, value.encode(), str(index).encode())
                break
            except BufferError:
                producer.poll(0.1)
        if index % 50_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return {customer: (counts[customer], sums[customer]) for customer in counts}


class TableReader:
    """Follows the output topic and keeps the latest row per key."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip
        self.consumer.subscribe([topic])
        self.latest: dict[str, tuple[int, Decimal]] = {}

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in self.consumer.consume(5_000, 0.2):
                value = message.value()
                if message.error() or value is None:
                    continue
                row = json.loads(value, parse_float=Decimal)
                self.latest[row["customer_id"]] = (row["n"], Decimal(row["total"]))

    def total_count(self) -> int:
        return sum(count for count, _ in self.latest.values())

    def close(self) -> None:
        self.consumer.close()


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_neither_loses_nor_double_counts(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=4)
    output = f"totals_{source}"
    reference = _produce_orders(kafka_broker.bootstrap, source)
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(
        f"CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2),\n"
        f"  status VARCHAR, created_at TIMESTAMP)\n"
        f"  WITH (kafka_topic = '{source}', value_format = 'JSON', timestamp = 'created_at');\n"
        f"CREATE TABLE totals WITH (kafka_topic = '{output}') AS\n"
        f"  SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total\n"
        f"  FROM orders GROUP BY customer_id;\n"
    )
    query = QueryProcess(
        sql_file, tmp_path, kafka_broker.bootstrap, uuid.uuid4().hex[:10],
        extra_env={"STREAMHOUSE_CHECKPOINT_INTERVAL_MS": "500"},
    )  # fmt: skip
    rng = random.Random(7)
    reader: TableReader | None = None
    try:
        for _ in range(KILLS):
            query.start()
            time.sleep(rng.uniform(1.0, 4.0))
            query.kill()
        query.start()
        reader = TableReader(kafka_broker.bootstrap, output)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            reader.poll(2.0)
            counted = reader.total_count()
            assert counted <= RECORDS, f"double counting: {counted} > {RECORDS}"
            if counted == RECORDS:
                break
    finally:
        query.stop()
        if reader is not None:
            reader.close()
    assert reader.latest == reference, "aggregates differ from the one-pass reference"
