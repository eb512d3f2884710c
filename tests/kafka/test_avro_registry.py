"""AVRO records against a real Confluent-compatible registry (Apicurio) and the real broker."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import fastavro
import pytest
from confluent_kafka import Consumer, Producer

from streamhouse_runtime.io import (
    DeserializationError,
    SchemaRegistry,
    avro_schema,
    key_serde,
    value_serde,
)
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.types import (
    BIGINT,
    DATE,
    DOUBLE,
    TIMESTAMP,
    VARCHAR,
    array,
    decimal,
    map_of,
    struct,
)

pytestmark = pytest.mark.kafka

COLUMNS = [
    Column("order_id", VARCHAR, key=True),
    Column("customer_id", VARCHAR),
    Column("amount", decimal(10, 2)),
    Column("quantity", BIGINT),
    Column("weight", DOUBLE),
    Column("created_at", TIMESTAMP),
    Column("ship_by", DATE),
    Column("tags", array(VARCHAR)),
    Column("attrs", map_of(VARCHAR, BIGINT)),
    Column("address", struct([("city", VARCHAR), ("zip", VARCHAR)])),
]
VALUE_COLUMNS = [c for c in COLUMNS if not c.key]
KEY_COLUMNS = [c for c in COLUMNS if c.key]


def order(n: int) -> dict[str, object]:
    return {
        "customer_id": f"c-{n % 7}",
        "amount": Decimal(f"{n * 10}.{n % 100:02d}"),
        "quantity": n,
        "weight": n / 4,
        "created_at": 1_700_000_000_000 + n,
        "ship_by": 19_700 + n,
        "tags": ["new", None] if n % 2 else [],
        "attrs": {"n": n},
        "address": None if n % 3 == 0 else {"city": "Oslo", "zip": f"0{n}"},
    }


def unique_subject(kind: str) -> str:
    return f"test-{uuid.uuid4().hex[:8]}-{kind}"


def test_schemas_register_once_and_ids_are_in_the_wire_format(schema_registry: str) -> None:
    registry = SchemaRegistry(schema_registry)
    subject = unique_subject("value")
    serde = value_serde(Format.AVRO, VALUE_COLUMNS, registry=registry, subject=subject)
    encoded = serde.encode(order(1))
    assert encoded is not None and encoded[0] == 0
    schema_id = int.from_bytes(encoded[1:5], "big")

    # What the real registry holds under that id and subject is the schema we generated.
    fresh = SchemaRegistry(schema_registry)
    expected = avro_schema("StreamHouseValue", VALUE_COLUMNS)
    assert json.loads(fresh.get_schema(schema_id)) == expected
    assert subject in fresh.subjects()
    # Registering the same schema again answers the same id (Confluent semantics).
    assert fresh.register(subject, json.dumps(expected)) == schema_id
    assert serde.encode(order(2)) is not None
    assert value_serde(Format.AVRO, VALUE_COLUMNS, registry=fresh).decode(encoded) == order(1)


def test_schema_evolution_reads_older_records_with_nulls(schema_registry: str) -> None:
    registry = SchemaRegistry(schema_registry)
    subject = unique_subject("value")
    old_columns = VALUE_COLUMNS[:3]
    old = value_serde(Format.AVRO, old_columns, registry=registry, subject=subject)
    new = value_serde(Format.AVRO, VALUE_COLUMNS, registry=registry, subject=subject)
    old_record = old.encode({"customer_id": "c-1", "amount": Decimal("1.50"), "quantity": 2})
    new_record = new.encode(order(5))
    assert old_record is not None and new_record is not None
    assert old_record[1:5] != new_record[1:5]  # two versions, two ids

    reader = value_serde(Format.AVRO, VALUE_COLUMNS, registry=SchemaRegistry(schema_registry))
    assert reader.decode(new_record) == order(5)
    assert reader.decode(old_record) == {
        "customer_id": "c-1",
        "amount": Decimal("1.50"),
        "quantity": 2,
        **{c.name: None for c in VALUE_COLUMNS[3:]},
    }


def test_records_from_another_producer_decode_by_field_name(schema_registry: str) -> None:
    registry = SchemaRegistry(schema_registry)
    writer = {
        "type": "record",
        "name": "KsqlDataSourceSchema",
        "namespace": "io.confluent.ksql.avro_schemas",
        "fields": [
            {"name": "QUANTITY", "type": ["null", "long"], "default": None},
            {"name": "CUSTOMER_ID", "type": ["null", "string"], "default": None},
            {
                "name": "CREATED_AT",
                "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
                "default": None,
            },
        ],
    }
    schema_id = registry.register(unique_subject("value"), json.dumps(writer))
    payload = io.BytesIO(b"\x00" + schema_id.to_bytes(4, "big"))
    payload.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(
        payload,
        fastavro.parse_schema(writer),
        {"QUANTITY": 3, "CUSTOMER_ID": "c-9", "CREATED_AT": 1_700_000_000_000_123},
    )
    row = value_serde(Format.AVRO, VALUE_COLUMNS, registry=registry).decode(payload.getvalue())
    assert row is not None
    assert (row["quantity"], row["customer_id"], row["created_at"]) == (3, "c-9", 1_700_000_000_000)
    assert row["amount"] is None


def test_unknown_schema_ids_are_bad_records(schema_registry: str) -> None:
    serde = value_serde(Format.AVRO, VALUE_COLUMNS, registry=SchemaRegistry(schema_registry))
    with pytest.raises(DeserializationError, match="unknown AVRO schema id 987654"):
        serde.decode(b"\x00" + (987654).to_bytes(4, "big") + b"\x02")


def test_avro_keys_and_values_round_trip_through_the_broker(
    schema_registry: str, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("avro-orders", partitions=2)
    producer_registry = SchemaRegistry(schema_registry)
    keys = key_serde(Format.AVRO, KEY_COLUMNS, registry=producer_registry, subject=f"{topic}-key")
    values = value_serde(Format.AVRO, COLUMNS, registry=producer_registry, subject=f"{topic}-value")
    sent = {f"o-{n}": order(n) for n in range(40)}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for order_id, row in sent.items():
        producer.produce(topic, key=keys.encode([order_id]), value=values.encode(row))
    producer.produce(topic, key=keys.encode(["deleted"]), value=values.encode(None))
    assert producer.flush(30) == 0
    assert {f"{topic}-key", f"{topic}-value"} <= set(producer_registry.subjects())

    # The consumer side knows no ids: it fetches every writer schema from the registry.
    consumer_registry = SchemaRegistry(schema_registry)
    read_keys = key_serde(Format.AVRO, KEY_COLUMNS, registry=consumer_registry)
    read_values = value_serde(Format.AVRO, COLUMNS, registry=consumer_registry)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}-g",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received: dict[str, dict[str, object] | None] = {}
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(sent) + 1 and time.monotonic() < deadline:
            for message in consumer.consume(50, 0.5):
                assert message.error() is None, message.error()
                key = read_keys.decode(message.key())
                assert isinstance(key["order_id"], str)
                received[key["order_id"]] = read_values.decode(message.value())
    finally:
        consumer.close()
    assert received.pop("deleted") is None
    assert received == sent
