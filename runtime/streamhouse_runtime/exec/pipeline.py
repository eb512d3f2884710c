"""Executes one stage of a query over batches of records, independent of Kafka clients.

The pod's main loop (`streamhouse run`) and the offline runner (`streamhouse test`) both
drive `StageExecutor`: records in, records out (results, repartitioned rows, dead letters),
and state changes handed over at each checkpoint.
"""

from __future__ import annotations

import logging
import pickle
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from streamhouse_runtime.exec.compiler import (
    UdfRegistry,
    compile_row_transform,
    compile_value,
    compile_values,
)
from streamhouse_runtime.exec.dedup import DEDUP_STORE, Deduplicator, origin_header
from streamhouse_runtime.exec.ksql_aggregates import row_arguments
from streamhouse_runtime.exec.stateful import (
    AggregateOperator,
    Emitted,
    LateRecord,
    NullGroupKey,
    WindowAggregateOperator,
)
from streamhouse_runtime.exec.table_aggregate import TableRowsOperator, UpdatingAggregateOperator
from streamhouse_runtime.exec.topology import (
    ExecSpec,
    StageSpec,
    internal_topic,
    result_key_columns,
)
from streamhouse_runtime.io.limits import (
    DEFAULT_LIMITS,
    RECORD_OVERHEAD,
    OutputRejected,
    TopicLimits,
)
from streamhouse_runtime.io.qualified import QualifiedKeys, QualifiedValues, qualifier_of
from streamhouse_runtime.io.registry import SchemaRegistry
from streamhouse_runtime.io.serde import (
    KeySerde,
    ValueSerde,
    key_serde,
    value_serde,
)
from streamhouse_runtime.io.windowed_keys import WINDOW_BOUNDS, WindowedKeyDecoder
from streamhouse_runtime.plan.nodes import (
    CHANGE_FIELD,
    Aggregate,
    ChangeKind,
    Distinct,
    Filter,
    Project,
    Repartition,
    Schema,
    Sink,
    Source,
    TableChanges,
    WindowAggregate,
)
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.query import WindowKind
from streamhouse_runtime.state.backend import StateBackend

log = logging.getLogger(__name__)

Row = dict[str, object]
Transform = Callable[[Row], Row | None]
ROWTIME = "ROWTIME"


class ErrorPolicy(StrEnum):
    DEAD_LETTER = "dead-letter"
    SKIP = "skip"
    FAIL = "fail"


class LatePolicy(StrEnum):
    DROP = "drop"
    DEAD_LETTER = "dead-letter"


Headers = list[tuple[str, str | bytes | None]]


class KafkaRecord(Protocol):
    """What a stage reads: the accessors of confluent_kafka.Message, so the pod's loop hands
    consumed messages over without copying them into other objects."""

    def error(self) -> object: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...


class RecordSink(Protocol):
    """Where a stage writes: the pod's producer, or the offline runner's in-memory topics."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None: ...


class MemoryRecord:
    """A KafkaRecord held in memory (offline runner and tests)."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_timestamp", "_topic", "_value")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._timestamp, self._key, self._value, self._headers = timestamp_ms, key, value, headers

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Headers | None:
        return self._headers


class QueryFailed(Exception):
    """A bad record under the `fail` error policy: the query stops."""


@dataclass
class StageSettings:
    query_id: str
    dead_letter_topic: str
    state_id: str = ""  # names the internal topics; the query_id when empty
    error_policy: ErrorPolicy = ErrorPolicy.DEAD_LETTER
    late_policy: LatePolicy = LatePolicy.DROP
    lateness_ms: int = 0
    idle_timeout_ms: int = 30_000
    cache_entries: int = 500_000
    registry: SchemaRegistry | None = None
    udfs: UdfRegistry | None = None
    # What the output and dead-letter topics accept (read from the broker at start).
    output_limits: TopicLimits = DEFAULT_LIMITS
    dead_letter_limits: TopicLimits = DEFAULT_LIMITS
    compatibility: Compatibility = Compatibility.DEFAULT  # the program's (sql/compatibility.py)


@dataclass
class StageCounters:
    records_in: int = 0
    records_out: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    late: int = 0
    duplicates: int = 0
    null_keys: int = 0  # records dropped because a GROUP BY column was NULL


def _columns(schema: Schema) -> list[Column]:
    return [Column(f.name, f.type) for f in schema.fields]


def sink_value_columns(schema: Schema, compatibility: Compatibility) -> list[Column]:
    """The columns a sink's value serde gets: under ksqlDB's rules the key columns are
    flagged, so they are written to the key alone and not again in the value."""
    if compatibility is not Compatibility.KSQLDB:
        return _columns(schema)
    keys = set(schema.key)
    return [Column(f.name, f.type, key=f.name in keys) for f in schema.fields]


def _chain(nodes: Sequence[Filter | Project], udfs: UdfRegistry | None) -> Transform | None:
    """Fuse a Filter/Project chain into as few generated functions as possible."""
    steps: list[Transform] = []
    index = 0
    while index < len(nodes):
        node = nodes[index]
        if isinstance(node, Filter):
            following = nodes[index + 1] if index + 1 < len(nodes) else None
            if isinstance(following, Project):
                steps.append(compile_row_transform(node.predicate, following.expressions, udfs))
                index += 2
                continue
            steps.append(compile_row_transform(node.predicate, None, udfs))
        else:
            steps.append(compile_row_transform(None, node.expressions, udfs))
        index += 1
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def chained(row: Row) -> Row | None:
        current: Row | None = row
        for step in steps:
            if current is None:
                return None
            current = step(current)
        return current

    return chained


def _key_function(
    keys: Sequence[tuple[str, bound.Expr]], udfs: UdfRegistry | None
) -> Callable[[Row], tuple[object, ...]]:
    return compile_values([expr for _, expr in keys], udfs)


def aggregate_arguments(
    aggregates: Sequence[tuple[str, bound.AggregateCall]], udfs: UdfRegistry | None
) -> list[Callable[[Row], object] | None]:
    """Per aggregate, what it folds from a row: its value argument (None for COUNT(*)), or
    one (x, y) tuple for an aggregate of two columns (CORRELATION)."""
    arguments: list[Callable[[Row], object] | None] = []
    for _, call in aggregates:
        inputs = row_arguments(call)
        if not inputs:
            arguments.append(None)
        elif len(inputs) == 1:
            arguments.append(compile_value(inputs[0], udfs))
        else:
            arguments.append(compile_values(inputs, udfs))
    return arguments


_WINDOW_BOUNDS = struct.Struct(">qq")
_WINDOW_START = struct.Struct(">q")
_NEVER = -(1 << 62)
KEY_CACHE_ENTRIES = 100_000
ERROR_HEADER = "streamhouse.error."
PreparedOutput = tuple[bytes | None, bytes | None, int]  # key, value, timestamp


def failure_reason(error: BaseException) -> str:
    """The dead-letter reason of an error: its type and message, bounded in length."""
    text = str(error) or type(error).__name__
    reason = f"{type(error).__name__}: {text}"
    return reason if len(reason) <= 1_000 else reason[:997] + "..."


def _header_bytes(headers: Headers | None) -> int:
    return sum(len(k) + (len(v) if v else 0) for k, v in headers) if headers else 0


def handle_bad_record(
    settings: StageSettings,
    counters: StageCounters,
    record: KafkaRecord,
    error: Exception,
    topic: str,
    out: RecordSink,
) -> None:
    """A record that failed, the error policy's way: stop the query, skip it, or send it to
    the dead-letter topic (what every stage executor does with its bad records)."""
    reason = failure_reason(error)
    if settings.error_policy is ErrorPolicy.FAIL:
        raise QueryFailed(
            f"{reason} at {record.topic()}[{record.partition()}]@{record.offset()}"
        ) from error
    if settings.error_policy is ErrorPolicy.SKIP:
        counters.skipped += 1
        return
    dead_letter_record(settings, counters, record, reason, topic, out)


def dead_letter_record(
    settings: StageSettings,
    counters: StageCounters,
    record: KafkaRecord,
    reason: str,
    topic: str,
    out: RecordSink,
) -> None:
    """An input record as a dead letter: its own bytes and headers, plus where it came from
    (`topic`: the stage's input it was read from) and why."""
    headers: Headers = [
        (k, v) for k, v in (record.headers() or ()) if v is not None
    ]  # the original headers travel with the dead letter
    headers += [
        (ERROR_HEADER + "reason", reason.encode()),
        (ERROR_HEADER + "topic", topic.encode()),
        (ERROR_HEADER + "partition", str(record.partition()).encode()),
        (ERROR_HEADER + "offset", str(record.offset()).encode()),
        (ERROR_HEADER + "query", settings.query_id.encode()),
    ]
    send_dead_letter(
        settings, counters, record.key(), record.value(), record.timestamp()[1], headers, out
    )


def send_dead_letter(
    settings: StageSettings,
    counters: StageCounters,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    headers: Headers,
    out: RecordSink,
) -> None:
    """Write one dead letter. It carries the wall-clock time (the original timestamp is
    a header: it may be one the topic refuses) and, if the original bytes are larger
    than the dead-letter topic takes, only the key and headers (a header says so)."""
    limits = settings.dead_letter_limits
    headers.append((ERROR_HEADER + "timestamp", str(timestamp_ms).encode()))
    size = (len(key) if key else 0) + (len(value) if value else 0) + _header_bytes(headers)
    if size + RECORD_OVERHEAD > limits.max_message_bytes:
        headers.append((ERROR_HEADER + "value-dropped", str(len(value or b"")).encode()))
        value = None
        if (len(key) if key else 0) + RECORD_OVERHEAD > limits.max_message_bytes:
            key = None
    out.send(settings.dead_letter_topic, key, value, int(time.time() * 1000), headers)
    counters.dead_lettered += 1


class StageExecutor:
    """One stage: decode, transform, (aggregate), encode; with error and late handling."""

    def __init__(
        self,
        spec: ExecSpec,
        settings: StageSettings,
        backend: StateBackend,
    ) -> None:
        if not isinstance(spec, StageSpec):
            raise TypeError("a join stage runs on exec.join_stage.JoinStageExecutor")
        self.spec: StageSpec = spec
        self.settings = settings
        self.backend = backend
        self.counters = StageCounters()
        self.store = f"stage-{spec.index}"
        udfs = settings.udfs
        self.rowtime = ROWTIME  # the event time's field (qualified in a join)
        self.input_topic, self.decode_value, self.decode_key = self._input(spec)
        self.pre = _chain(spec.pre, udfs)
        self.post = _chain(spec.post, udfs)
        self.time_field = spec.input.timestamp_field if isinstance(spec.input, Source) else None
        self.window_op: WindowAggregateOperator | None = None
        self.aggregate_op: AggregateOperator | None = None
        self.table_rows: TableRowsOperator | None = None  # a TABLE's rows, before GROUP BY
        self.updating_op: UpdatingAggregateOperator | None = None  # GROUP BY over a TABLE
        self.distinct_seen: dict[tuple[int, bytes], bool] = {}
        self._distinct_dirty: dict[bytes, bytes | None] = {}
        self._build_stateful(spec, udfs)
        self.output_topic, self.encode_value, self.encode_key, self.rekey = self._output(spec)
        # Session windows are keyed by start and end, the others by their start.
        self.session_windows = (
            isinstance(spec.stateful, WindowAggregate)
            and spec.stateful.window.kind is WindowKind.SESSION
        )
        self.watermarks: dict[int, int] = {}
        self.max_event_time: dict[int, int] = {}
        self.last_seen_ms: dict[int, float] = {}
        self.positions: dict[int, int] = {}  # partition -> next offset to consume
        self.key_cache: dict[bytes | None, Row] = {}
        self.last_event_time_ms: int | None = None  # of the latest record processed
        self.dedup = Deduplicator(self.store, backend)
        # The sink's limits are read from the broker; internal topics are ours (defaults).
        self.limits = settings.output_limits if isinstance(spec.output, Sink) else DEFAULT_LIMITS
        self.largest_output = self.limits.max_message_bytes - RECORD_OVERHEAD
        self._undo: Any = (
            self.window_op.undo
            if self.window_op is not None
            else self.aggregate_op.undo
            if self.aggregate_op is not None
            else self.updating_op.undo
            if self.updating_op is not None
            else self.table_rows.undo
            if self.table_rows is not None
            else None
        )
        if not spec.is_source_stage:
            self.dedup.load()

    # -- construction ----------------------------------------------------------------------

    def _input(self, spec: StageSpec) -> tuple[str, ValueSerde, KeySerde | None]:
        registry = self.settings.registry
        if isinstance(spec.input, Source):
            source = spec.input
            # Key columns (KEY / PRIMARY KEY) come from the record key alone, in every value
            # format: the value holds the other columns (ksqlDB's rule). In a join the fields
            # are qualified (`o.amount`); the record holds the bare column names.
            qualifier = qualifier_of(source)
            raw = len(qualifier)
            self.rowtime = qualifier + ROWTIME
            keys = set(source.schema.key)
            bounds = set(WINDOW_BOUNDS) if source.window_type is not None else set()
            columns = [
                Column(f.name[raw:], f.type, key=f.name in keys)
                for f in source.schema.fields
                if f.name[raw:] != ROWTIME and f.name[raw:] not in bounds
            ]
            decode: ValueSerde = value_serde(
                source.value_format,
                columns,
                timestamp_column=source.timestamp_field[raw:] if source.timestamp_field else None,
                timestamp_format=source.timestamp_format,
                registry=registry,
                subject=f"{source.topic}-value",
            )
            key_columns = [c for c in columns if c.key]
            decode_key: KeySerde | None = (
                key_serde(
                    source.key_format, key_columns, registry=registry, subject=f"{source.topic}-key"
                )
                if key_columns
                else None
            )
            if source.window_type is not None:
                decode_key = WindowedKeyDecoder(
                    decode_key or key_serde(source.key_format, []),
                    source.window_type,
                    source.window_size_ms,
                    end_first=self.settings.compatibility is Compatibility.KSQLDB,
                )
            if qualifier:
                decode = QualifiedValues(decode, qualifier, [c.name for c in columns if not c.key])
                if decode_key is not None:
                    decode_key = QualifiedKeys(decode_key, qualifier, [c.name for c in key_columns])
            return source.topic, decode, decode_key
        topic = internal_topic(
            self.settings.state_id or self.settings.query_id, spec.input.topic_suffix
        )
        return topic, value_serde(Format.JSON, _columns(spec.input.schema)), None

    def _build_stateful(self, spec: StageSpec, udfs: UdfRegistry | None) -> None:
        node = spec.stateful
        if isinstance(node, WindowAggregate):
            arguments = aggregate_arguments(node.aggregates, udfs)
            time_field = node.window.time_field

            def time_of(row: Row) -> int | None:
                value = row.get(time_field) if time_field else None
                if isinstance(value, int):
                    return value
                value = row.get(ROWTIME)
                return value if isinstance(value, int) else None

            self.window_op = WindowAggregateOperator(
                node,
                _key_function(node.group_keys, udfs),
                arguments,
                time_of,
                self.backend,
                self.store,
                self.settings.cache_entries,
                latest_input_time=self.settings.compatibility is Compatibility.KSQLDB,
            )
        elif isinstance(node, TableChanges):
            self.table_rows = TableRowsOperator(
                self.backend, self.store, self.settings.cache_entries
            )
        elif isinstance(node, Aggregate) and node.updating:
            ksqldb = self.settings.compatibility is Compatibility.KSQLDB
            self.updating_op = UpdatingAggregateOperator(
                node,
                _key_function(node.group_keys, udfs),
                aggregate_arguments(node.aggregates, udfs),
                self.backend,
                self.store,
                self.settings.cache_entries,
                keep_empty_groups=ksqldb,
                latest_input_time=ksqldb,
            )
        elif isinstance(node, Aggregate):
            arguments = aggregate_arguments(node.aggregates, udfs)
            self.aggregate_op = AggregateOperator(
                node,
                _key_function(node.group_keys, udfs),
                arguments,
                self.backend,
                self.store,
                self.settings.cache_entries,
                latest_input_time=self.settings.compatibility is Compatibility.KSQLDB,
            )

    def _output(
        self, spec: StageSpec
    ) -> tuple[str, ValueSerde, KeySerde | None, Callable[[Row], tuple[object, ...]] | None]:
        output = spec.output
        registry = self.settings.registry
        rekey = (
            _key_function(spec.rekey.keys, self.settings.udfs) if spec.rekey is not None else None
        )
        if isinstance(output, Repartition):
            columns = _columns(output.schema)
            topic = internal_topic(
                self.settings.state_id or self.settings.query_id, output.topic_suffix
            )
            return (
                topic,
                value_serde(Format.JSON, columns),
                key_serde(
                    spec.output_key_format,
                    [Column(f"k{i}", e.type) for i, (_, e) in enumerate(output.keys)],
                ),
                _key_function(output.keys, self.settings.udfs),
            )
        if not isinstance(output, Sink):
            raise ValueError("a stage must end in a repartition or a sink")
        columns = sink_value_columns(output.schema, self.settings.compatibility)
        key_columns: list[Column] = []
        if isinstance(spec.stateful, Aggregate | WindowAggregate):
            key_columns = result_key_columns(spec.stateful)
        elif spec.rekey is not None:
            key_columns = [Column(f"k{i}", e.type) for i, (_, e) in enumerate(spec.rekey.keys)]
        key_format = output.key_format
        if key_format is Format.KAFKA and len(key_columns) > 1:
            key_format = Format.JSON  # a multi-column key cannot use a primitive serializer
        encode_key = (
            key_serde(key_format, key_columns, registry=registry, subject=f"{output.topic}-key")
            if key_columns
            else None
        )
        return (
            output.topic,
            value_serde(
                output.value_format, columns, registry=registry, subject=f"{output.topic}-value"
            ),
            encode_key,
            rekey,
        )

    # -- processing ------------------------------------------------------------------------

    def process(self, batch: Sequence[KafkaRecord], out: RecordSink) -> None:
        """Run every record of the batch through the stage, sending what it emits to `out`.

        This loop is the runtime's hot path: locals instead of attribute lookups, and a
        stateless stage writes straight to the sink without intermediate objects.
        """
        pre = self.pre
        time_field = self.time_field
        rowtime = self.rowtime
        decode = self.decode_value.decode
        decode_key = self.decode_key.decode if self.decode_key is not None else None
        key_cache = self.key_cache
        check_duplicates = not self.spec.is_source_stage
        stateless = self.spec.stateful is None and self.rekey is None and not check_duplicates
        send = out.send
        output_topic = self.output_topic
        encode = self.encode_value.encode
        direct = stateless and not isinstance(self.spec.output, Repartition)
        window = self.window_op.process if self.window_op is not None else None
        table_rows = self.table_rows
        emit_all = self._emit_updates
        # Entries the current record changed (see _UndoLog); emptied after each success.
        undo_saved: list[Any] = self._undo.saved if self._undo is not None else []
        batch_watermark = self.watermark()
        # Event times the output topic accepts (the broker's timestamp limits, from now).
        earliest, latest = self._accepted_times()
        limits = self.limits
        largest = limits.max_message_bytes - RECORD_OVERHEAD
        keyless_refused = limits.compacted
        count = 0
        written = 0
        event_time = None
        now_ms = int(time.time() * 1000)
        # Consumed batches come in long runs of records from one partition: a partition's
        # progress (next offset, highest event time) is kept in locals for the current run
        # and stored when the run ends, not in dicts for every record.
        run_partition = -1
        run_last: KafkaRecord | None = None
        run_max_time = _NEVER
        try:
            for record in batch:
                if record.error() is not None:
                    continue
                count += 1
                partition: int = record.partition()  # type: ignore[assignment]
                if partition != run_partition:
                    if run_last is not None:
                        self._progress(run_partition, run_last, run_max_time)
                    run_partition, run_max_time = partition, _NEVER
                run_last = record
                try:
                    if check_duplicates and self.dedup.duplicate(record.headers(), partition):
                        self.counters.duplicates += 1
                        continue
                    row = decode(record.value())
                    if row is None:
                        if table_rows is not None:  # a TABLE's tombstone deletes its key
                            self._table_change(None, record, partition, record.timestamp()[1], out)
                        continue  # a tombstone on a stream carries no row
                    if decode_key is not None:
                        # Key columns come from the key alone (a NULL key: all NULL), never
                        # from a value field of the same name. Keys repeat (customers,
                        # devices...): decode each one once.
                        key_bytes = record.key()
                        key_row = key_cache.get(key_bytes)
                        if key_row is None:
                            key_row = decode_key(key_bytes)
                            if len(key_cache) < KEY_CACHE_ENTRIES:
                                key_cache[key_bytes] = key_row
                        row.update(key_row)
                    if time_field:
                        event_time = row.get(time_field)
                        if not isinstance(event_time, int):
                            raise ValueError(f"event time {time_field} is NULL")
                    else:
                        event_time = record.timestamp()[1]
                    if not earliest <= event_time <= latest:
                        self._time_refused(event_time)
                    row[rowtime] = event_time
                    if event_time > run_max_time:
                        run_max_time = event_time
                    if pre is not None:
                        row = pre(row)
                        if row is None:
                            if table_rows is not None:  # a table row WHERE drops: a delete
                                self._table_change(None, record, partition, event_time, out)
                            continue
                    if direct:
                        key = record.key()
                        value = encode(row)
                        if key is None:
                            if keyless_refused or len(value) > largest:  # type: ignore[arg-type]
                                limits.check(output_topic, key, value, event_time, now_ms)
                        elif len(value) + len(key) > largest:  # type: ignore[arg-type]
                            limits.check(output_topic, key, value, event_time, now_ms)
                        send(output_topic, key, value, event_time)
                        written += 1
                    elif window is not None:
                        # The watermark of the batch start: records of one batch never close
                        # windows for each other, which keeps the per-record cost flat.
                        offset: int = record.offset()  # type: ignore[assignment]
                        updates = window(row, partition, offset, batch_watermark)
                        if updates:
                            emit_all(updates, out)
                        if undo_saved:
                            undo_saved.clear()
                    else:
                        offset = record.offset()  # type: ignore[assignment]
                        self._stateful(row, record, partition, offset, event_time, out)
                        if undo_saved:
                            undo_saved.clear()
                except LateRecord as late:
                    self.counters.late += 1
                    if self.settings.late_policy is LatePolicy.DEAD_LETTER:
                        self._dead_letter(record, str(late), out)
                except NullGroupKey:
                    self.counters.null_keys += 1
                except QueryFailed:
                    raise
                except Exception as error:
                    # Anything a record can cause (bad bytes, an overflow, an output the
                    # topic refuses, a failing UDF, deep nesting) is the record's error: its
                    # state changes are undone and it goes the way of the error policy.
                    if self._undo is not None:
                        self._undo.rollback()
                    self._bad_record(record, error, out)
        finally:
            if run_last is not None:
                self._progress(run_partition, run_last, run_max_time)
        self.counters.records_in += count
        self.counters.records_out += written
        if isinstance(event_time, int):
            self.last_event_time_ms = event_time

    def _accepted_times(self) -> tuple[int, int]:
        """The event times an output may carry now: not before the epoch (Kafka Streams
        refuses negative timestamps) and within the output topic's timestamp limits."""
        now_ms = int(time.time() * 1000)
        limits = self.limits
        earliest = max(0, now_ms - limits.max_past_ms)
        return earliest, now_ms + limits.max_future_ms

    def _time_refused(self, event_time: int) -> None:
        if event_time < 0:
            raise OutputRejected(f"event time {event_time} is before the epoch")
        self.limits.check_time(self.output_topic, event_time, int(time.time() * 1000))
        raise OutputRejected(f"event time {event_time} is out of range")

    def _progress(self, partition: int, last: KafkaRecord, max_event_time: int) -> None:
        """Record a run of records from `partition`: its last record and highest event time."""
        self.positions[partition] = last.offset() + 1  # type: ignore[operator]
        if max_event_time > self.max_event_time.get(partition, _NEVER):
            self.max_event_time[partition] = max_event_time

    def _stateful(
        self,
        row: Row,
        record: KafkaRecord,
        partition: int,
        offset: int,
        event_time: int,
        out: RecordSink,
    ) -> None:
        if self.aggregate_op is not None:
            emitted = self.aggregate_op.process(row, partition, offset, event_time)
            self._emit_upsert(emitted, partition, out)
        elif self.table_rows is not None:
            self._table_change(row, record, partition, event_time, out)
        elif self.updating_op is not None:
            change = self.updating_op.process(row, partition, event_time)
            if change is not None:
                self._emit_change(change, partition, out)
        elif isinstance(self.spec.stateful, Distinct):
            identity = pickle.dumps(sorted(row.items()), pickle.HIGHEST_PROTOCOL)
            key = (partition, identity)
            if key in self.distinct_seen or self.backend.get(self.store, self._distinct_key(key)):
                return
            self.distinct_seen[key] = True
            self._distinct_dirty[self._distinct_key(key)] = b"1"
            self._write(row, record, partition, offset, event_time, out)
        else:
            self._write(row, record, partition, offset, event_time, out)

    @staticmethod
    def _distinct_key(key: tuple[int, bytes]) -> bytes:
        return struct.pack(">i", key[0]) + key[1]

    def _prepare(self, emitted: Emitted) -> PreparedOutput | None:
        """The output record of a window result (None when HAVING drops it), checked
        against what the output topic accepts."""
        row = emitted.row
        if row is not None and self.post is not None:
            row = self.post(row)
            if row is None:
                return None
        key = self._window_key(emitted)
        value = self.encode_value.encode(row) if row is not None else None
        self.limits.check(
            self.output_topic, key, value, emitted.timestamp_ms, int(time.time() * 1000)
        )
        return key, value, emitted.timestamp_ms

    def _check_size(
        self, key: bytes | None, value: bytes | None, timestamp_ms: int, header_bytes: int = 0
    ) -> None:
        """The size and key checks of TopicLimits, in one comparison for the usual record;
        the record's event time was checked when it came in."""
        size = (len(key) if key else 0) + (len(value) if value else 0) + header_bytes
        if size > self.largest_output or (key is None and self.limits.compacted):
            self.limits.check(
                self.output_topic, key, value, timestamp_ms, timestamp_ms, header_bytes
            )

    def _emit_updates(self, updates: Sequence[Emitted], out: RecordSink) -> None:
        """The EMIT CHANGES updates of one record: all prepared before any is sent, so a
        failing one leaves nothing half-written (the record's state is then undone)."""
        prepared = [self._prepare(emitted) for emitted in updates]
        send, topic = out.send, self.output_topic
        for output in prepared:
            if output is not None:
                send(topic, output[0], output[1], output[2])
                self.counters.records_out += 1

    def _emit(self, emitted: Emitted, out: RecordSink) -> None:
        """A closed window's result. It belongs to no single input record, so an output
        that cannot be written goes to the dead-letter topic itself, with the reason."""
        try:
            output = self._prepare(emitted)
        except Exception as error:
            self._dead_letter_output(emitted, failure_reason(error), out)
            return
        if output is not None:
            out.send(self.output_topic, output[0], output[1], output[2])
            self.counters.records_out += 1

    def _emit_upsert(self, emitted: Emitted, partition: int, out: RecordSink) -> None:
        """Running aggregates: an upsert per change, a tombstone when HAVING drops a group."""
        assert self.aggregate_op is not None and emitted.row is not None
        row = self.post(emitted.row) if self.post is not None else emitted.row
        visible_before = self.aggregate_op.mark_emitted(partition, emitted.key, row is not None)
        if row is None and not visible_before:
            return
        key = self.encode_key.encode(list(emitted.key)) if self.encode_key is not None else None
        value = self.encode_value.encode(row) if row is not None else None
        self._check_size(key, value, emitted.timestamp_ms)  # its event time was checked
        out.send(self.output_topic, key, value, emitted.timestamp_ms)
        self.counters.records_out += 1

    def _table_change(
        self, row: Row | None, record: KafkaRecord, partition: int, event_time: int, out: RecordSink
    ) -> None:
        """A table row's change (None: deleted), as the retraction of its previous row (to
        the old group) and the addition of the new one (to the new group); one origin
        header sequence each, so the next stage drops them when re-sent after a restart."""
        assert self.table_rows is not None and self.rekey is not None
        key = record.key()
        if key is None:
            raise NullGroupKey("a table record without a key")
        previous = self.table_rows.change(partition, key, row)
        new_group = self.rekey(row) if row is not None else None
        changes: list[Row] = []
        if previous is not None:
            old_group = self.rekey(previous)
            kind = ChangeKind.REPLACE if old_group == new_group else ChangeKind.RETRACT
            changes.append({**previous, CHANGE_FIELD: kind})
        if row is not None:
            changes.append({**row, CHANGE_FIELD: ChangeKind.ADD})
        offset: int = record.offset()  # type: ignore[assignment]
        prepared: list[tuple[bytes | None, bytes | None, Headers]] = []
        for sequence, change in enumerate(changes):
            group = list(self.rekey(change))
            out_key = self.encode_key.encode(group) if self.encode_key is not None else None
            value = self.encode_value.encode(change)
            self._check_size(out_key, value, event_time, 64)
            prepared.append((out_key, value, [origin_header(str(partition), offset, sequence)]))
        for out_key, value, headers in prepared:
            out.send(self.output_topic, out_key, value, event_time, headers)
            self.counters.records_out += 1
        self.table_rows.undo.clear()

    def _emit_change(self, emitted: Emitted, partition: int, out: RecordSink) -> None:
        """An updating aggregate's change of a group: an upsert, or a tombstone when the
        group is gone or HAVING drops it (only if its row was visible)."""
        assert self.updating_op is not None
        row = emitted.row
        if row is not None and self.post is not None:
            row = self.post(row)
        visible_before = self.updating_op.mark_emitted(partition, emitted.key, row is not None)
        if row is None and not visible_before:
            return
        key = self.encode_key.encode(list(emitted.key)) if self.encode_key is not None else None
        value = self.encode_value.encode(row) if row is not None else None
        self._check_size(key, value, emitted.timestamp_ms)
        out.send(self.output_topic, key, value, emitted.timestamp_ms)
        self.counters.records_out += 1

    def _window_key(self, emitted: Emitted) -> bytes | None:
        inner = self.encode_key.encode(emitted.key) if self.encode_key is not None else b""
        if emitted.window is None:
            return inner
        start, end = emitted.window
        if self.session_windows:
            if self.settings.compatibility is Compatibility.KSQLDB:
                # Kafka Streams' SessionWindowedSerializer: the key, then end, then start.
                return (inner or b"") + _WINDOW_BOUNDS.pack(end, start)
            return (inner or b"") + _WINDOW_BOUNDS.pack(start, end)
        return (inner or b"") + _WINDOW_START.pack(start)

    def _write(
        self,
        row: Row,
        record: KafkaRecord,
        partition: int,
        offset: int,
        event_time: int,
        out: RecordSink,
    ) -> None:
        """Stateless output: to the sink (maybe re-keyed), or into a repartition topic."""
        key = record.key()
        rekey = self.rekey
        if rekey is not None:
            values = list(rekey(row))
            key = self.encode_key.encode(values) if self.encode_key is not None else None
        headers: Headers | None = None
        if isinstance(self.spec.output, Repartition):
            # Lets the next stage drop rows re-sent after a restart (effectively once).
            # Source partition and offset; a stage reads one source topic.
            headers = [origin_header(str(partition), offset)]
        value = self.encode_value.encode(row)
        self._check_size(key, value, event_time, 64)  # its event time was checked
        out.send(self.output_topic, key, value, event_time, headers)
        self.counters.records_out += 1

    # -- repartition de-duplication ---------------------------------------------------------

    def _dedup_prefix(self) -> bytes:
        return self.dedup.prefix

    def retain_partitions(self, owned: set[int]) -> None:
        """Forget the de-duplication entries of input partitions another pod owns now, so
        checkpoints never write them back into those partitions' changelog."""
        self.dedup.retain(owned)

    def dedup_keys(self, partition: int) -> list[bytes]:
        """The stored de-duplication keys of one input partition."""
        return self.dedup.keys(partition)

    # -- errors ----------------------------------------------------------------------------

    def _bad_record(self, record: KafkaRecord, error: Exception, out: RecordSink) -> None:
        handle_bad_record(self.settings, self.counters, record, error, self.input_topic, out)

    def _dead_letter(self, record: KafkaRecord, reason: str, out: RecordSink) -> None:
        dead_letter_record(self.settings, self.counters, record, reason, self.input_topic, out)

    def _send_dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers,
        out: RecordSink,
    ) -> None:
        send_dead_letter(self.settings, self.counters, key, value, timestamp_ms, headers, out)

    def _dead_letter_output(self, emitted: Emitted, reason: str, out: RecordSink) -> None:
        """A result that belongs to no single input record (a closed window) and cannot be
        written: dead-lettered as readable JSON, with the output topic and window."""
        headers: Headers = [
            (ERROR_HEADER + "reason", reason.encode()),
            (ERROR_HEADER + "output-topic", self.output_topic.encode()),
            (ERROR_HEADER + "query", self.settings.query_id.encode()),
        ]
        if emitted.window is not None:
            headers.append((ERROR_HEADER + "window", b"%d-%d" % emitted.window))
        value = repr(emitted.row).encode() if emitted.row is not None else None
        self._send_dead_letter(None, value, emitted.timestamp_ms, headers, out)

    def dead_letter_refused(
        self,
        batch: Sequence[KafkaRecord],
        topic: str,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        out: RecordSink,
    ) -> None:
        """An output the broker refused after `produce()` (its delivery report failed for
        good). A stateless stage computes the same output again from each record of the
        batch that produced it, to dead-letter that input record with the usual headers; a
        stateful result belongs to no one record and is dead-lettered itself."""
        if self.spec.stateful is None:
            for record in batch:
                if record.error() is None and self._output_of(record) == (key, value):
                    self._dead_letter(record, reason, out)
                    return
        headers: Headers = [
            (ERROR_HEADER + "reason", reason.encode()),
            (ERROR_HEADER + "output-topic", topic.encode()),
            (ERROR_HEADER + "query", self.settings.query_id.encode()),
        ]
        good = [r for r in batch if r.error() is None]
        offsets = [offset for r in good if (offset := r.offset()) is not None]
        if offsets:
            partitions = sorted({p for r in good if (p := r.partition()) is not None})
            headers.append((ERROR_HEADER + "topic", self.input_topic.encode()))
            headers.append(
                (ERROR_HEADER + "partition", ",".join(str(p) for p in partitions).encode())
            )
            headers.append((ERROR_HEADER + "offsets", f"{min(offsets)}-{max(offsets)}".encode()))
        self._send_dead_letter(key, value, int(time.time() * 1000), headers, out)

    def _output_of(self, record: KafkaRecord) -> tuple[bytes | None, bytes | None] | None:
        """What a stateless stage writes for `record` (key, value), or None."""
        try:
            row = self.decode_value.decode(record.value())
            if row is None:
                return None
            if self.decode_key is not None:
                row.update(self.decode_key.decode(record.key()))
            event_time = row.get(self.time_field) if self.time_field else None
            row[self.rowtime] = event_time if isinstance(event_time, int) else record.timestamp()[1]
            if self.pre is not None:
                row = self.pre(row)
                if row is None:
                    return None
            key = record.key()
            if self.rekey is not None:
                values = list(self.rekey(row))
                key = self.encode_key.encode(values) if self.encode_key is not None else None
            return key, self.encode_value.encode(row)
        except Exception:
            return None

    # -- time ------------------------------------------------------------------------------

    def watermark(self, now_ms: float | None = None) -> int:
        """Min over active partitions of (max event time - lateness)."""
        lateness = self.settings.lateness_ms
        if not self.max_event_time:
            return _NEVER
        active = [
            t
            for p, t in self.max_event_time.items()
            if now_ms is None
            or now_ms - self.last_seen_ms.get(p, now_ms) < self.settings.idle_timeout_ms
        ]
        values = active or list(self.max_event_time.values())
        return min(values) - lateness

    def mark_seen(self, partitions: Mapping[int, float]) -> None:
        self.last_seen_ms.update(partitions)

    def advance(self, out: RecordSink, now_ms: float | None = None, final: bool = False) -> None:
        """Close windows the watermark has passed (`final`: the input is over, close all)."""
        if self.window_op is None:
            return
        watermark = (1 << 62) if final else self.watermark(now_ms)
        partitions = set(self.max_event_time) | {key[0] for key in self.window_op.entries}
        for partition in sorted(partitions):
            for emitted in self.window_op.close(partition, watermark):
                self._emit(emitted, out)

    # -- checkpoints -----------------------------------------------------------------------

    def changes(self) -> dict[str, dict[bytes, bytes | None]]:
        writes: dict[str, dict[bytes, bytes | None]] = {}
        if self.window_op is not None:
            writes[self.store] = self.window_op.changes()
        if self.aggregate_op is not None:
            writes[self.store] = self.aggregate_op.changes()
        if self.table_rows is not None:
            writes[self.store] = self.table_rows.changes()
        if self.updating_op is not None:
            writes[self.store] = self.updating_op.changes()
        if self._distinct_dirty:
            writes[self.store] = dict(self._distinct_dirty)
            self._distinct_dirty.clear()
        dedup = self.dedup.changes()
        if dedup:
            writes[DEDUP_STORE] = dedup
        return writes

    @property
    def is_stateful(self) -> bool:
        return self.spec.stateful is not None or not self.spec.is_source_stage

    @property
    def input_topics(self) -> list[str]:
        return [self.input_topic]

    def offsets(self) -> dict[tuple[str, int], int]:
        """The next offset to consume of every input partition processed."""
        topic = self.input_topic
        return {(topic, partition): offset for partition, offset in self.positions.items()}

    def restore_writes(
        self, store_writes: Mapping[bytes, bytes | None]
    ) -> dict[str, dict[bytes, bytes | None]]:
        """Store writes of this stage's changelog records (its one store)."""
        return {self.store: dict(store_writes)}

    def drop_writes(self, partition: int) -> dict[str, dict[bytes, bytes | None]]:
        """Deletes of one partition's state."""
        start, end = struct.pack(">i", partition), struct.pack(">i", partition + 1)
        return {self.store: {key: None for key, _ in self.backend.scan(self.store, start, end)}}

    def changelog(
        self, writes: Mapping[str, Mapping[bytes, bytes | None]]
    ) -> tuple[dict[bytes, bytes | None], dict[tuple[int, bytes], bytes | None]]:
        """This stage's part of `changes()`, as (store writes, de-duplication writes keyed by
        (partition, key)) for its changelog topic."""
        return dict(writes.get(self.store, {})), self.dedup.changelog(writes)

    def restored(self) -> None:
        """Re-read what a changelog restore wrote to the backend behind this executor."""
        self.dedup.load()
        if self.window_op is not None:
            self.window_op.stored_max_end.clear()

    def state_entries(self) -> int:
        if self.window_op is not None:
            return self.window_op.entry_count()
        if self.aggregate_op is not None:
            return self.aggregate_op.entry_count()
        if self.table_rows is not None:
            return self.table_rows.entry_count()
        if self.updating_op is not None:
            return self.updating_op.entry_count()
        return len(self.distinct_seen)
