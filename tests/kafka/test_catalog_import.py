"""`streamhouse catalog import` against a real Confluent-compatible schema registry (Apicurio):
the latest Avro schema of a subject becomes a StreamSource whose declaration validates."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from streamhouse_runtime.cli import main
from streamhouse_runtime.io.registry import SchemaRegistry
from streamhouse_runtime.sql.declarations import parse_declaration

pytestmark = pytest.mark.kafka

ORDER_V1 = {
    "type": "record",
    "name": "Order",
    "fields": [
        {"name": "order_id", "type": "long"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                    "precision": 10, "scale": 2}},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}  # fmt: skip


def test_the_latest_schema_of_a_subject_becomes_a_stream_source(
    schema_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    registry = SchemaRegistry(schema_registry)
    registry.register(subject, json.dumps(ORDER_V1))
    newer = {**ORDER_V1, "fields": [*ORDER_V1["fields"],
             {"name": "channel", "type": ["null", "string"], "default": None}]}  # fmt: skip
    registry.register(subject, json.dumps(newer))
    code = main(
        ["catalog", "import", "--registry", schema_registry, "--subject", subject,
         "--name", "orders", "--topic", "orders", "--timestamp", "created_at"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    manifest = yaml.safe_load(out)
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("StreamSource", "orders")
    source = parse_declaration(manifest["spec"]["sql"], "imported").source
    assert [(c.name, str(c.type)) for c in source.columns] == [
        ("order_id", "BIGINT"),
        ("amount", "DECIMAL(10,2)"),
        ("created_at", "TIMESTAMP"),
        ("channel", "VARCHAR"),
    ]
    assert (source.value_format.value, source.topic, source.timestamp_column) == (
        "AVRO",
        "orders",
        "created_at",
    )


def test_an_unknown_subject_is_an_e434(
    schema_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["catalog", "import", "--registry", schema_registry, "--subject", "no-such-subject",
         "--name", "x", "--topic", "x"]
    )  # fmt: skip
    assert code == 1
    assert "error[E434]" in capsys.readouterr().err
