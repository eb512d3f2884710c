"""`streamhouse test`: run statements over in-memory topics and compare with expected outputs.

Files follow ksqlDB's test-runner format: `{"inputs": [{"topic", "key", "value", "timestamp"}]}`
and `{"outputs": [...]}` with an optional `"window": {"start", "end"}`. The same stage
executors as the pods run, with the in-memory state backend. At the end of the input the run
behaves like a bounded source: the watermark advances to the end and every open window closes.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from streamhouse_runtime.exec.join_stage import JoinStageExecutor
from streamhouse_runtime.exec.pipeline import (
    ErrorPolicy,
    Headers,
    MemoryRecord,
    StageExecutor,
    StageSettings,
)
from streamhouse_runtime.exec.topology import (
    ExecSpec,
    JoinStageSpec,
    NotExecutable,
    internal_topic,
    repartition_counts,
    result_key_columns,
    split_stages,
)
from streamhouse_runtime.io.partitioner import java_partition
from streamhouse_runtime.io.serde import key_serde, value_serde
from streamhouse_runtime.io.windowed_keys import split_windowed_key, windowed_key
from streamhouse_runtime.plan.nodes import Aggregate, Sink, WindowAggregate
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_udfs
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Column, Format, Source
from streamhouse_runtime.sql.compatibility import Compatibility, parse_compatibility
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.sql.query import AnalyzedStatement, Program
from streamhouse_runtime.state.backend import MemoryStateBackend

DEAD_LETTER_TOPIC = "streamhouse-test-dlq"


@dataclass
class TopicRecord:
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Headers | None = None
    partition: int = 0


class MemoryTopics:
    """In-memory topics; the RecordSink the stages of an offline run write to. A record goes
    to the partition Kafka's Java partitioner picks for its key (murmur2), as in a pod."""

    def __init__(self) -> None:
        self.records: dict[str, list[TopicRecord]] = defaultdict(list)
        self.partitions: dict[str, int] = {}  # partition counts; topics not named have one
        self.sent = 0

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        count = self.partitions.get(topic, 1)
        partition = java_partition(key, count) if key is not None and count > 1 else 0
        self.records[topic].append(TopicRecord(key, value, timestamp_ms, headers, partition))
        self.sent += 1


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def _normalize(value: Any) -> Any:
    """Numbers compare by value (1 == 1.0 == Decimal('1.00')), containers recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        return number.normalize() if number != 0 else Decimal(0)
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


class OfflineRun:
    """Executes every persistent query of a program, in order, over in-memory topics."""

    def __init__(self, program: Program, udf_path: str = "") -> None:
        self.program = program
        self.memory = MemoryTopics()
        self.topics = self.memory.records
        self.udfs = load_udfs(program, udf_path)

    def source_for_topic(self, topic: str) -> Source | None:
        return next((s for s in self.program.catalog.sources.values() if s.topic == topic), None)

    def feed(self, inputs: list[dict[str, Any]]) -> None:
        for position, item in enumerate(inputs):
            topic = item["topic"]
            source = self.source_for_topic(topic)
            if source is None:
                raise ValueError(f"input {position}: no stream or table reads topic {topic!r}")
            value = item.get("value")
            key = item.get("key")
            partition = int(item.get("partition", 0))
            if partition < 0:
                raise ValueError(f"input {position}: partition {partition} is negative")
            known = max(self.memory.partitions.get(topic, 1), source.partitions or 1)
            self.memory.partitions[topic] = max(known, partition + 1)
            self.topics[topic].append(
                TopicRecord(
                    self._encode_key(source, key)
                    if source.window_type is None
                    else self._encode_windowed_key(source, key, item.get("window")),
                    self._encode_value(source, value),
                    int(item.get("timestamp", 0)),
                    partition=partition,
                )
            )

    @staticmethod
    def _encode_value(source: Source, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str) and source.value_format is not Format.JSON:
            return value.encode()
        columns = [c for c in source.columns if not (c.key and source.value_format is Format.KAFKA)]
        if source.value_format is Format.JSON:
            return json.dumps(value, default=_json_default).encode()
        row = value if isinstance(value, dict) else {columns[0].name: value}
        return value_serde(source.value_format, columns).encode(row)

    @property
    def _end_first(self) -> bool:
        """Session keys in Kafka Streams' layout (end, then start): the ksqlDB mode."""
        return self.program.compatibility is Compatibility.KSQLDB

    def _encode_windowed_key(self, source: Source, key: Any, window: Any) -> bytes | None:
        """A windowed source's input key: the key, then the bounds of its `"window"`."""
        if not isinstance(window, dict) or "start" not in window:
            raise ValueError(f'{source.name} has windowed keys: give each input a "window"')
        assert source.window_type is not None
        start = int(window["start"])
        end = int(window.get("end", start + (source.window_size_ms or 0)))
        inner = self._encode_key(source, key)
        return windowed_key(inner, source.window_type, start, end, self._end_first)

    @staticmethod
    def _encode_key(source: Source, key: Any) -> bytes | None:
        if key is None:
            return None
        key_columns = [c for c in source.columns if c.key]
        if not key_columns:
            return str(key).encode() if not isinstance(key, bytes) else key
        values = [key[c.name] for c in key_columns] if isinstance(key, dict) else [key]
        return key_serde(source.key_format, key_columns).encode(values)

    def run(self) -> list[str]:
        """Run each persistent query; returns notes for the user (e.g. windows closed)."""
        notes: list[str] = []
        for number, statement in enumerate(self.program.persistent_queries):
            plan = plan_statement(statement)
            assert isinstance(plan, Sink)
            stages = split_stages(plan)
            settings = StageSettings(
                query_id=f"test-{number}",
                dead_letter_topic=DEAD_LETTER_TOPIC,
                error_policy=ErrorPolicy.DEAD_LETTER,
                udfs=self.udfs,
                compatibility=self.program.compatibility,
            )
            backend = MemoryStateBackend()
            self._partition_internal_topics(stages, settings)
            for spec in stages:
                executor: StageExecutor | JoinStageExecutor = (
                    JoinStageExecutor(spec, settings, backend)
                    if isinstance(spec, JoinStageSpec)
                    else StageExecutor(spec, settings, backend)
                )
                records = [
                    MemoryRecord(
                        topic,
                        record.partition,
                        offset,
                        record.timestamp_ms,
                        record.key,
                        record.value,
                        record.headers,
                    )
                    for topic in executor.input_topics
                    for offset, record in enumerate(self.topics.get(topic, []))
                ]
                executor.process(records, self.memory)
                before = self.memory.sent
                executor.advance(self.memory, final=True)
                if executor.window_op is not None and self.memory.sent > before:
                    notes.append(
                        f"{statement.name}: end of input closed {self.memory.sent - before} "
                        "open window(s) (bounded source)"
                    )
        return notes

    def _partition_internal_topics(self, stages: list[ExecSpec], settings: StageSettings) -> None:
        """Internal topics get the partition counts a pod creates them with."""
        counts = self.memory.partitions
        state_id = settings.state_id or settings.query_id
        for suffix, count in repartition_counts(stages, counts).items():
            counts[internal_topic(state_id, suffix)] = count

    def outputs(self) -> list[dict[str, Any]]:
        """Every record the queries produced, in the test-file format."""
        produced: list[dict[str, Any]] = []
        for statement in self.program.persistent_queries:
            sink = statement.sink
            assert sink is not None and statement.query is not None
            for record in self.topics.get(sink.topic, []):
                produced.append(self._describe(statement, sink, record))
        for record in self.topics.get(DEAD_LETTER_TOPIC, []):
            headers = dict(record.headers or [])
            raw = headers.get("streamhouse.error.reason")
            reason = raw.decode() if isinstance(raw, bytes) else str(raw or "")
            # A dead letter carries the wall-clock time; the original one is a header.
            original = headers.get("streamhouse.error.timestamp")
            timestamp = int(original) if original else record.timestamp_ms
            produced.append(
                {
                    "topic": DEAD_LETTER_TOPIC,
                    "key": record.key.decode(errors="replace") if record.key else None,
                    "value": record.value.decode(errors="replace") if record.value else None,
                    "timestamp": timestamp,
                    "reason": reason,
                }
            )
        return produced

    def _describe(
        self, statement: AnalyzedStatement, sink: Source, record: TopicRecord
    ) -> dict[str, Any]:
        plan = plan_statement(statement)
        stages = split_stages(plan)  # type: ignore[arg-type]
        stateful = stages[-1].stateful
        key_bytes = record.key
        window: dict[str, int | str] | None = None
        if sink.window_type is not None and key_bytes is not None:
            key_bytes, start, end = split_windowed_key(
                key_bytes, sink.window_type, sink.window_size_ms, self._end_first
            )
            window = {"start": start, "end": end}
            if self._end_first:  # ksqlDB's test-runner format names the window's type
                window["type"] = "session" if sink.window_type == "SESSION" else "time"
        key: Any = None
        key_columns = [c for c in sink.columns if c.key]
        if key_bytes:
            last = stages[-1]
            if isinstance(last, JoinStageSpec):
                keyed_by = (
                    [e for _, e in last.rekey.keys] if last.rekey else list(last.join.left_keys)
                )
                columns = [Column(f"k{i}", e.type) for i, e in enumerate(keyed_by)]
            elif isinstance(stateful, Aggregate | WindowAggregate):
                columns = result_key_columns(stateful)
            else:
                columns = key_columns or [Column("key", sink.columns[0].type)]
            fmt = sink.key_format if len(columns) == 1 else Format.JSON
            try:
                decoded = key_serde(fmt, columns).decode(key_bytes)
                key = next(iter(decoded.values())) if len(decoded) == 1 else decoded
            except Exception:  # an undecodable key is still shown, as text
                key = key_bytes.decode(errors="replace")
        value = None
        if record.value is not None:
            value = value_serde(sink.value_format, list(sink.columns)).decode(record.value)
        described: dict[str, Any] = {
            "topic": sink.topic,
            "key": key,
            "value": value,
            "timestamp": record.timestamp_ms,
        }
        if window is not None:
            described["window"] = window
        return described


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """A unified diff of the records (empty when they match); only fields the expected
    record names are compared, so `timestamp` and `window` may be left out."""
    shown_actual = []
    for position, record in enumerate(actual):
        template = expected[position] if position < len(expected) else record
        shown = {k: record.get(k) for k in template if k in record or k in template}
        window, wanted = shown.get("window"), template.get("window")
        if isinstance(window, dict) and isinstance(wanted, dict):
            # A window's parts the expected record leaves out (ksqlDB's "type") are not compared.
            shown["window"] = {k: window.get(k) for k in wanted}
        shown_actual.append(shown)
    left = [json.dumps(_jsonable(_normalize(r)), sort_keys=True) for r in expected]
    right = [json.dumps(_jsonable(_normalize(r)), sort_keys=True) for r in shown_actual]
    if left == right:
        return []
    return list(difflib.unified_diff(left, right, "expected", "actual", lineterm="", n=2))


def _jsonable(value: Any) -> Any:
    """Normalized values back to readable JSON: integral numbers as ints, others exact."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(format(value, "f"))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def read_statements(path: Path) -> str:
    """SQL from a .sql file, or spec.sql of a StreamQuery manifest (.yaml/.yml)."""
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        manifest = yaml.safe_load(text)
        return str(manifest["spec"]["sql"])
    return text


def _compatibility(args: argparse.Namespace) -> Compatibility:
    """`--compatibility`, else a StreamQuery manifest's spec.compatibility, else the default."""
    chosen = getattr(args, "compatibility", None)
    path = Path(args.statements)
    if chosen is None and path.suffix in (".yaml", ".yml"):
        import yaml

        spec = (yaml.safe_load(path.read_text()) or {}).get("spec") or {}
        chosen = spec.get("compatibility")
    return parse_compatibility(chosen)


def _read_json(path: str, field: str, exact: bool = False) -> list[dict[str, Any]]:
    """The `field` list of a test file, or a ValueError that says what is wrong with it
    (`exact`: numbers with a fraction read as Decimal)."""
    try:
        text = Path(path).read_text()
        document = json.loads(text, parse_float=Decimal) if exact else json.loads(text)
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    records = document.get(field, []) if isinstance(document, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f'{path}: expected {{"{field}": [{{...}}, ...]}}')
    return records


def _with_catalog(sql: str, args: argparse.Namespace, mode: Compatibility) -> str:
    """The SQL with the catalog declarations it uses in front (what a pod would run)."""
    paths = getattr(args, "catalog", None)
    if not paths:
        return sql
    from streamhouse_runtime.sql.declarations import catalog_of, load_catalog, prelude

    shared = catalog_of(load_catalog(Path(p) for p in paths))
    return prelude(shared, analyze(sql, shared, mode).catalog.shared_used) + sql


def run_test(args: argparse.Namespace) -> int:
    """Entry point of `streamhouse test`."""
    try:
        mode = _compatibility(args)
        program = analyze(
            _with_catalog(read_statements(Path(args.statements)), args, mode), None, mode
        )
        if not program.persistent_queries:
            print(f"{args.statements}: no persistent query to test", file=sys.stderr)
            return 1
        run = OfflineRun(program, getattr(args, "udf_path", None) or "")
        run.feed(_read_json(args.input, "inputs"))
        notes = run.run()
    except SqlValidationError as invalid:
        for error in invalid.errors:
            print(error.render(args.statements), file=sys.stderr)
        return 1
    except (NotExecutable, ValueError, KeyError) as error:
        print(f"streamhouse test: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}")
    actual = run.outputs()
    if args.record:
        Path(args.record).write_text(
            json.dumps({"outputs": actual}, indent=2, default=_json_default) + "\n"
        )
        print(f"recorded {len(actual)} output record(s) to {args.record}")
    if args.output is None:
        return 0
    try:
        expected = _read_json(args.output, "outputs", exact=True)
    except ValueError as error:
        print(f"streamhouse test: {error}", file=sys.stderr)
        return 1
    diff = compare(expected, actual)
    if diff:
        print(f"FAILED: outputs differ from {args.output}")
        print("\n".join(diff))
        return 1
    print(f"PASSED: {len(actual)} output record(s) match {args.output}")
    return 0
