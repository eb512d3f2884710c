"""`streamhouse run` against the real broker: examples end to end, dead letters, metrics,
restarts with the state on the volume."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka

ORDERS = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2),
  status VARCHAR, created_at TIMESTAMP)
  WITH (kafka_topic = '{topic}', value_format = 'JSON', timestamp = 'created_at');
"""


def totals_sql(source: str, output: str, aggregate: str = "SUM") -> str:
    """Orders from `source`, a running total per customer into `output`. GROUP BY a value
    column: rows go through a repartition topic to the stateful stage."""
    return ORDERS.format(topic=source) + (
        f"CREATE TABLE totals WITH (kafka_topic = '{output}') AS SELECT customer_id, "
        f"COUNT(*) AS n, {aggregate}(amount) AS total FROM orders GROUP BY customer_id;"
    )


def latest_totals(bootstrap: str, topic: str) -> dict[str, tuple[int, Decimal]]:
    """The last (n, total) per customer in a totals topic."""
    latest: dict[str, tuple[int, Decimal]] = {}
    for message in read_messages(bootstrap, topic, 1_000_000, timeout_s=3):
        value = _json(message.value())
        latest[value["customer_id"]] = (value["n"], value["total"])
    return latest


def _json(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value, parse_float=Decimal)
    except ValueError:
        return value  # a dead letter keeps the original, undecodable bytes


def read_all(bootstrap: str, topic: str, expect: int, timeout_s: float = 60) -> list[Any]:
    """Records of `topic` as (key, decoded JSON value, headers), once `expect` arrived."""
    return [
        (m.key(), _json(m.value()), dict(m.headers() or []))
        for m in read_messages(bootstrap, topic, expect, timeout_s)
    ]


def produce(
    bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for index, value in enumerate(values):
        producer.produce(topic, value, keys[index] if keys else None)
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def order(order_id: int, amount: str, customer: str = "c1", at: int = 1_700_000_000_000) -> bytes:
    return (
        f'{{"order_id": {order_id}, "customer_id": "{customer}", "amount": {amount}, '
        f'"status": "placed", "created_at": {at}}}'
    ).encode()


@pytest.fixture
def query_dir(tmp_path: Path) -> Path:
    return tmp_path


def start_query(broker: KafkaBroker, directory: Path, sql: str, **env: str) -> QueryProcess:
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    query_id = uuid.uuid4().hex[:10]
    return QueryProcess(sql_file, directory, broker.bootstrap, query_id, extra_env=env).start()


def test_filter_with_a_malformed_record_in_the_dead_letter_topic(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], query_dir: Path
) -> None:
    source = make_topic("orders", partitions=2)
    out = f"high_{source}"
    sql = ORDERS.format(topic=source) + (
        f"CREATE STREAM high_value WITH (kafka_topic = '{out}') AS "
        "SELECT * FROM orders WHERE amount > 1000;"
    )
    produce(
        kafka_broker.bootstrap,
        source,
        [order(1, "1500.50"), b"{not json", order(2, "999.99"), order(3, "1000.01")],
        [b"1", b"bad", b"2", b"3"],
    )
    query = start_query(kafka_broker, query_dir, sql, STREAMHOUSE_DEAD_LETTER_TOPIC=f"{source}-dlq")
    try:
        results = read_all(kafka_broker.bootstrap, out, 2)
        dead = read_all(kafka_broker.bootstrap, f"{source}-dlq", 1)
        produce(kafka_broker.bootstrap, source, [order(4, "5000")], [b"4"])  # still running
        later = read_all(kafka_broker.bootstrap, out, 3)
        wait_until(lambda: query.metric("streamhouse_dead_letter_records_total") == 1, 30, "m")
        metrics = query.metrics()
    finally:
        assert query.stop() == 0

    assert sorted(value["order_id"] for _, value, _ in results) == [1, 3]
    assert {value["amount"] for _, value, _ in results} == {Decimal("1500.50"), Decimal("1000.01")}
    assert {key for key, _, _ in results} == {b"1", b"3"}  # the input key is kept
    assert sorted(value["order_id"] for _, value, _ in later) == [1, 3, 4]
    assert len(dead) == 1
    key, _, headers = dead[0]
    assert key == b"bad"
    assert headers["streamhouse.error.topic"] == source.encode()
    assert b"DeserializationError" in headers["streamhouse.error.reason"]
    assert headers["streamhouse.error.offset"] in (b"0", b"1")
    assert f'streamhouse_records_in_total{{topic="{source}"}} 5.0' in metrics
    assert "streamhouse_end_to_end_latency_seconds_bucket" in metrics
    assert "streamhouse_consumer_lag" in metrics


def test_running_totals_survive_a_restart_without_double_counting(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], query_dir: Path
) -> None:
    source = make_topic("orders", partitions=3)
    out = f"totals_{source}"
    sql = ORDERS.format(topic=source) + (
        f"CREATE TABLE customer_totals WITH (kafka_topic = '{out}') AS SELECT customer_id, "
        "COUNT(*) AS order_count, SUM(amount) AS total_spent FROM orders GROUP BY customer_id;"
    )
    first_batch = [order(i, "10.5", f"c{i % 4}") for i in range(200)]
    produce(kafka_broker.bootstrap, source, first_batch)
    query = start_query(kafka_broker, query_dir, sql)
    read_all(kafka_broker.bootstrap, out, 200)
    assert query.stop() == 0  # a graceful stop checkpoints

    second_batch = [order(i, "1.25", f"c{i % 4}") for i in range(200, 300)]
    produce(kafka_broker.bootstrap, source, second_batch)
    restarted = QueryProcess(
        query.sql_file, query_dir, kafka_broker.bootstrap, query.query_id
    ).start()
    try:
        records = read_all(kafka_broker.bootstrap, out, 300)
    finally:
        restarted.stop()
    latest: dict[str, Any] = {}
    for _, value, _ in records:
        latest[value["customer_id"]] = value
    assert {c: (v["order_count"], v["total_spent"]) for c, v in latest.items()} == {
        f"c{n}": (75, Decimal("10.5") * 50 + Decimal("1.25") * 25) for n in range(4)
    }
