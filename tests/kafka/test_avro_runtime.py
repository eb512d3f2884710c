"""AVRO in and out of `streamhouse run`, with the real broker and a real Confluent-compatible
schema registry: Confluent wire format on both sides, schemas registered under <topic>-value."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streamhouse_runtime.io.registry import SchemaRegistry
from streamhouse_runtime.io.serde import value_serde
from streamhouse_runtime.sql.analyzer import analyze
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka


def test_avro_source_to_avro_sink_through_the_registry(
    kafka_broker: KafkaBroker,
    make_topic: Callable[..., str],
    schema_registry: str,
    tmp_path: Path,
) -> None:
    source = make_topic("avro-orders")
    output = f"{source}-high"
    sql = (
        "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2), "
        f"created_at TIMESTAMP) WITH (kafka_topic = '{source}', value_format = 'AVRO', "
        "timestamp = 'created_at');\n"
        f"CREATE STREAM high WITH (kafka_topic = '{output}', value_format = 'AVRO') AS "
        "SELECT order_id, amount, amount * 2 AS doubled FROM orders WHERE amount > 100;"
    )
    program = analyze(sql)
    orders = program.catalog.source("orders")
    high = program.catalog.source("high")
    assert orders is not None and high is not None
    registry = SchemaRegistry(schema_registry)
    encode = value_serde(
        orders.value_format, list(orders.columns), registry=registry, subject=f"{source}-value"
    ).encode
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for order_id, amount in ((1, "99.99"), (2, "150.25"), (3, "1000.00")):
        row = {
            "order_id": order_id,
            "customer_id": "c1",
            "amount": Decimal(amount),
            "created_at": 1_700_000_000_000 + order_id,
        }
        producer.produce(source, encode(row))
    assert producer.flush(30) == 0

    sql_file = tmp_path / "query.sql"
    sql_file.write_text(sql)
    query = QueryProcess(
        sql_file, tmp_path, kafka_broker.bootstrap, uuid.uuid4().hex[:10],
        extra_env={"STREAMHOUSE_SCHEMA_REGISTRY_URL": schema_registry},
    ).start()  # fmt: skip
    try:
        messages = read_messages(kafka_broker.bootstrap, output, 2)
    finally:
        assert query.stop() == 0

    decode = value_serde(
        high.value_format, list(high.columns), registry=registry, subject=f"{output}-value"
    ).decode
    rows = [decode(m.value()) for m in messages]
    assert [(r["order_id"], r["amount"], r["doubled"]) for r in rows if r] == [
        (2, Decimal("150.25"), Decimal("300.50")),
        (3, Decimal("1000.00"), Decimal("2000.00")),
    ]
    assert all(m.value()[:1] == b"\x00" for m in messages)  # Confluent wire format
    assert f"{output}-value" in registry.subjects()
