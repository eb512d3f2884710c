"""The design's examples (examples/<name>/{streamquery.yaml,input.json,expected.json}) made
runnable against a real broker: unique topics, and a closing record that ends every window.

A real stream never ends, so after the example's input one more record far in event time
advances the watermark and closes the example's windows; the outputs it causes itself come
after the expected ones and are not compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Message, Producer

from streamhouse_runtime.io.serde import key_serde, value_serde
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Format, Source
from streamhouse_runtime.sql.compatibility import Compatibility, parse_compatibility
from streamhouse_runtime.sql.declarations import catalog_of, load_catalog, prelude
from streamhouse_runtime.testing.runner import compare

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "streamquery.yaml").exists())
DAY_MS = 86_400_000


def watermark_record(inputs: list[dict[str, Any]]) -> dict[str, Any]:
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


def _key_bytes(source: Source, key: Any) -> bytes:
    """The record key: in the source's key format where it declares key columns."""
    key_columns = [c for c in source.columns if c.key]
    if key_columns and key is not None:
        try:
            encoded = key_serde(source.key_format, key_columns).encode([key])
            if encoded is not None:
                return encoded
        except (TypeError, ValueError):
            pass  # the closing record's made-up key
    return str(key).encode()


@dataclass
class Example:
    name: str
    manifest: dict[str, Any]
    inputs: list[dict[str, Any]]
    expected: list[dict[str, Any]]

    @classmethod
    def load(cls, name: str) -> Example:
        folder = EXAMPLES / name
        manifest = yaml.safe_load((folder / "streamquery.yaml").read_text())
        if (folder / "catalog.yaml").exists():
            # What the operator deploys: the catalog declarations the query reads, then its SQL.
            shared = catalog_of(load_catalog([folder / "catalog.yaml"]))
            sql = manifest["spec"]["sql"]
            used = analyze(sql, shared).catalog.shared_used
            manifest["spec"]["sql"] = prelude(shared, used) + sql
        return cls(
            name,
            manifest,
            json.loads((folder / "input.json").read_text())["inputs"],
            json.loads((folder / "expected.json").read_text(), parse_float=Decimal)["outputs"],
        )

    @property
    def source_topic(self) -> str:
        return str(self.inputs[0]["topic"])

    @property
    def source_topics(self) -> list[str]:
        """Every topic the input feeds (a join reads several), in order of first use."""
        return list(dict.fromkeys(str(item["topic"]) for item in self.inputs))

    def sql_for(self, topics: str | dict[str, str], output: str) -> str:
        """The example's SQL reading `topics` (the new name of each source topic, or one
        name for a single-source example) and writing `output`."""
        renamed = topics if isinstance(topics, dict) else {self.source_topic: topics}
        sql: str = self.manifest["spec"]["sql"]
        for old, new in renamed.items():
            sql = sql.replace(f"kafka_topic = '{old}'", f"kafka_topic = '{new}'")
        named = re.search(r"WITH \(kafka_topic = '[^']*'\) AS\n", sql)
        if named is not None:  # the sink names its topic already
            return sql.replace(named.group(0), f"WITH (kafka_topic = '{output}') AS\n", 1)
        return sql.replace(" AS\n", f" WITH (kafka_topic = '{output}') AS\n", 1)

    @property
    def compatibility(self) -> Compatibility:
        """The SQL rules the manifest asks for (`spec.compatibility`)."""
        return parse_compatibility(self.manifest["spec"].get("compatibility") or "default")

    def produce(self, bootstrap: str, sql: str, topics: str | dict[str, str]) -> None:
        """The example's input, then the closing record, into `topics` (as in `sql_for`)."""
        renamed = topics if isinstance(topics, dict) else {self.source_topic: topics}
        program = analyze(sql, compatibility=self.compatibility)
        producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
        for item in [*self.inputs, watermark_record(self.inputs)]:
            topic = renamed[item["topic"]]
            source = next(s for s in program.catalog.sources.values() if s.topic == topic)
            value = item["value"]
            if value is None:
                encoded = None
            elif source.value_format is Format.JSON:  # as written, like `streamhouse test`
                encoded = json.dumps(value).encode()
            else:
                encoded = value_serde(source.value_format, list(source.columns)).encode(value)
            key_bytes = _key_bytes(source, item.get("key"))
            producer.produce(topic, encoded, key_bytes, timestamp=item["timestamp"])
        assert producer.flush(30) == 0

    def mismatches(self, sql: str, output: str, messages: list[Message]) -> list[str]:
        """Differences between the expected outputs and the first messages of `output`."""
        sink = analyze(sql, compatibility=self.compatibility).persistent_queries[0].sink
        assert sink is not None
        decode = value_serde(sink.value_format, list(sink.columns)).decode
        actual = [
            {"topic": output, "value": decode(m.value()), "timestamp": m.timestamp()[1]}
            for m in messages[: len(self.expected)]
        ]
        wanted = [
            {"topic": output, "value": o["value"], "timestamp": o["timestamp"]}
            for o in self.expected
        ]
        return compare(wanted, actual)
