"""The design's examples through the real broker: the same inputs and expected outputs that
`streamhouse test` checks offline, now through `streamhouse run`, Kafka and RocksDB.

A real stream never ends, so after the example's input one more record far in event time
advances the watermark and closes the example's windows; the outputs it causes itself come
after the expected ones and are not compared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from streamhouse_runtime.io.serde import value_serde
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.testing.runner import compare
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "streamquery.yaml").exists())
DAY_MS = 86_400_000


def _watermark_record(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    last = inputs[-1]
    value = dict(last["value"])
    for column in value:
        if isinstance(value[column], str):
            value[column] = "zz-watermark"
        elif isinstance(value[column], int | float) and not column.endswith(("_at", "_time")):
            value[column] = 0
    timestamp = max(i["timestamp"] for i in inputs) + DAY_MS
    for column in ("created_at", "event_time"):
        if column in value:
            value[column] = timestamp
    return {"topic": last["topic"], "key": "zz-watermark", "value": value, "timestamp": timestamp}


@pytest.mark.parametrize("name", NAMES)
def test_example_through_the_broker(
    name: str, kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    folder = EXAMPLES / name
    sql = yaml.safe_load((folder / "streamquery.yaml").read_text())["spec"]["sql"]
    inputs = json.loads((folder / "input.json").read_text())["inputs"]
    expected = json.loads((folder / "expected.json").read_text(), parse_float=Decimal)["outputs"]
    source_topic = inputs[0]["topic"]
    topic = make_topic(source_topic)
    output = f"{topic}-out"
    sql = sql.replace(f"kafka_topic = '{source_topic}'", f"kafka_topic = '{topic}'")
    sql = sql.replace(" AS\n", f" WITH (kafka_topic = '{output}') AS\n", 1)
    program = analyze(sql)
    source = program.catalog.source(source_topic) or next(iter(program.catalog.sources.values()))
    sink = program.persistent_queries[0].sink
    assert sink is not None

    encode = value_serde(source.value_format, list(source.columns)).encode
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for item in [*inputs, _watermark_record(inputs)]:
        producer.produce(
            topic, encode(item["value"]), str(item["key"]).encode(), timestamp=item["timestamp"]
        )
    assert producer.flush(30) == 0

    sql_file = tmp_path / "query.sql"
    sql_file.write_text(sql)
    query = QueryProcess(sql_file, tmp_path, kafka_broker.bootstrap, uuid.uuid4().hex[:10])
    query.start()
    try:
        messages = read_messages(kafka_broker.bootstrap, output, len(expected))
    finally:
        assert query.stop() == 0

    decode = value_serde(sink.value_format, list(sink.columns)).decode
    actual = [
        {"topic": o["topic"], "value": decode(m.value()), "timestamp": m.timestamp()[1]}
        for o, m in zip(expected, messages, strict=False)
    ]
    wanted = [{k: o[k] for k in ("topic", "value", "timestamp")} for o in expected]
    for record in wanted:
        record["topic"] = output
    for record in actual:
        record["topic"] = output
    assert compare(wanted, actual) == []
