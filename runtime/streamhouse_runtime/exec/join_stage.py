"""Executes a join stage: two co-partitioned input ports, the join operator, the stateless
operators after it, and one output (the sink, or the repartition topic of the next stage).

Records are decoded when they arrive and queued per task (port queues of one partition); they
are taken in event-time order across the ports (`port_queues.PortQueues`), so a table update
affects the stream records after it, not before. The task's stream time is the largest event
time taken from a stream port; the join operator's watermark is that minus the configured
lateness (Kafka Streams' stream time), which expires buffered rows and emits outer-join padding.

A record's position counts once it is taken, not when it is queued: a checkpoint stores the
next offset after the last record processed on each port, and records still queued are read
again after a restart.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamhouse_runtime.exec.compiler import compile_row_transform, compile_values
from streamhouse_runtime.exec.dedup import DEDUP_STORE, Deduplicator, origin_header
from streamhouse_runtime.exec.operator import Output, Row, StoreWrites
from streamhouse_runtime.exec.pipeline import (
    ERROR_HEADER,
    KEY_CACHE_ENTRIES,
    ROWTIME,
    Headers,
    KafkaRecord,
    QueryFailed,
    RecordSink,
    StageCounters,
    StageSettings,
    _chain,
    _columns,
    handle_bad_record,
    send_dead_letter,
    sink_value_columns,
)
from streamhouse_runtime.exec.port_queues import NEVER, PortQueues, Queued
from streamhouse_runtime.exec.stream_stream_join import StreamStreamJoinOperator
from streamhouse_runtime.exec.stream_table_join import StreamTableJoinOperator
from streamhouse_runtime.exec.table_table_join import TableTableJoinOperator
from streamhouse_runtime.exec.topology import JoinStageSpec, internal_topic
from streamhouse_runtime.io.limits import DEFAULT_LIMITS, RECORD_OVERHEAD
from streamhouse_runtime.io.qualified import QualifiedKeys, QualifiedValues, qualifier_of
from streamhouse_runtime.io.serde import KeySerde, ValueSerde, key_serde, value_serde
from streamhouse_runtime.plan.nodes import Repartition, Sink, Source
from streamhouse_runtime.plan.stages import Port
from streamhouse_runtime.sql.catalog import Column, Format, SourceKind
from streamhouse_runtime.sql.query import JoinKind
from streamhouse_runtime.state.backend import StateBackend
from streamhouse_runtime.state.changelog import partition_range

log = logging.getLogger(__name__)

# ksqlDB's grace period of a stream-stream join without GRACE PERIOD (Kafka Streams'
# `JoinWindows.of`): 24 hours.
DEFAULT_JOIN_GRACE_MS = 24 * 3600 * 1000
MAX_TASK_IDLE_MS = 500  # how long a task waits for an empty port that is not caught up
QUEUE_PAUSE = 20_000  # queued records of one port and partition that pause its fetching
QUEUE_RESUME = 5_000


class _PortReader:
    """Turns one port's records into rows: decode, key columns, event time, port operators."""

    def __init__(self, port: Port, settings: StageSettings) -> None:
        self.index = port.index
        self.table = port.kind is SourceKind.TABLE
        reads = port.reads
        self.decode_key: KeySerde | None = None
        self.time_field: str | None = None
        if isinstance(reads, Source):
            self.topic = reads.topic
            qualifier = qualifier_of(reads)
            raw = len(qualifier)
            keys = set(reads.schema.key)
            columns = [
                Column(f.name[raw:], f.type, key=f.name in keys)
                for f in reads.schema.fields
                if f.name[raw:] != ROWTIME
            ]
            self.time_field = reads.timestamp_field
            time_column = self.time_field[raw:] if self.time_field else None
            decode: ValueSerde = value_serde(
                reads.value_format,
                columns,
                timestamp_column=time_column,
                timestamp_format=reads.timestamp_format,
                registry=settings.registry,
                subject=f"{reads.topic}-value",
            )
            key_columns = [c for c in columns if c.key]
            if key_columns:
                self.decode_key = key_serde(
                    reads.key_format,
                    key_columns,
                    registry=settings.registry,
                    subject=f"{reads.topic}-key",
                )
            if qualifier:
                value_names = [c.name for c in columns if not c.key]
                decode = QualifiedValues(decode, qualifier, value_names)
                if self.decode_key is not None:
                    names = [c.name for c in key_columns]
                    self.decode_key = QualifiedKeys(self.decode_key, qualifier, names)
            self.decode_value = decode
            self.rowtime = qualifier + ROWTIME
        else:
            self.topic = internal_topic(settings.state_id or settings.query_id, reads.topic_suffix)
            self.decode_value = value_serde(Format.JSON, _columns(reads.schema))
            self.rowtime = ROWTIME
        self.internal = port.internal
        self.key_cache: dict[bytes | None, Row] = {}
        self.pre = _chain([n for n in port.operators], settings.udfs)  # type: ignore[misc]

    def read(self, record: KafkaRecord) -> tuple[Row | None, Row | None, int]:
        """(row, key row, event time). A table tombstone has no row, only its key row; a
        stream record without a value has neither."""
        value = record.value()
        key_row = None
        if self.decode_key is not None:
            key = record.key()
            key_row = self.key_cache.get(key)
            if key_row is None:
                key_row = self.decode_key.decode(key)
                if len(self.key_cache) < KEY_CACHE_ENTRIES:
                    self.key_cache[key] = key_row
        if value is None:
            return None, key_row if self.table else None, record.timestamp()[1]
        row = self.decode_value.decode(value)
        if row is None:
            return None, key_row if self.table else None, record.timestamp()[1]
        if key_row is not None:
            row.update(key_row)
        if self.time_field and not self.internal:
            event_time = row.get(self.time_field)
            if not isinstance(event_time, int):
                raise ValueError(f"event time {self.time_field} is NULL")
        else:
            event_time = record.timestamp()[1]
        if event_time < 0:
            raise ValueError(f"event time {event_time} is before the epoch")
        if not self.internal:
            row[self.rowtime] = event_time
        if self.pre is not None:
            row = self.pre(row)
        return row, key_row, event_time


def _predicate(transform: Callable[[Row], Row | None]) -> Callable[[Row], bool]:
    return lambda row: transform(dict(row)) is not None


def _load_row(value: bytes) -> Row:
    row: Row = pickle.loads(value)
    return row


def _dump_row(row: object) -> bytes:
    """A stored row (a table-table join stores it with its time)."""
    return pickle.dumps(row, pickle.HIGHEST_PROTOCOL)


class JoinStageExecutor:
    """One join stage over every partition this process owns."""

    window_op = None  # no windows or aggregates of its own (results reads look for those)
    aggregate_op = None

    def __init__(self, spec: JoinStageSpec, settings: StageSettings, backend: StateBackend) -> None:
        self.spec = spec
        self.settings = settings
        self.backend = backend
        self.counters = StageCounters()
        self.store = f"stage-{spec.index}"
        udfs = settings.udfs
        self.readers = [_PortReader(port, settings) for port in spec.ports]
        self.input_topics = [reader.topic for reader in self.readers]
        self.input_topic = self.input_topics[0]
        self.port_of = {reader.topic: reader.index for reader in self.readers}
        self.stream_ports = [not reader.table for reader in self.readers]
        join = spec.join
        left_key = compile_values(list(join.left_keys), udfs)
        right_key = compile_values(list(join.right_keys), udfs)
        left_fields = [f.name for f in join.left.schema.fields]
        right_fields = [f.name for f in join.right.schema.fields]
        residual = (
            _predicate(compile_row_transform(join.residual, None, udfs))
            if join.residual is not None
            else None
        )
        self.operator: Any = None
        self.stream_stream: StreamStreamJoinOperator | None = None
        self.stream_table: StreamTableJoinOperator | None = None
        self.table_table: TableTableJoinOperator | None = None
        # How a table port's tombstone finds its join key (from the record key's columns).
        self.tombstone_keys: list[Callable[[Row], tuple[object, ...]] | None] = [None, None]
        if join.left_kind is SourceKind.TABLE and join.right_kind is SourceKind.TABLE:
            self.table_table = TableTableJoinOperator(
                join.kind, left_key, right_key, left_fields, right_fields, _dump_row,
                residual, store=join.store,
            )  # fmt: skip
            self.operator = self.table_table
            self.tombstone_keys = [left_key, right_key]
        elif join.right_kind is SourceKind.TABLE:
            self.stream_table = StreamTableJoinOperator(
                join.kind, left_key, right_key, right_fields, _dump_row, residual,
                store=f"{join.store}-right",
            )  # fmt: skip
            self.operator = self.stream_table
            self.tombstone_keys = [None, right_key]
        else:
            self.stream_stream = StreamStreamJoinOperator(
                join.kind, left_key, right_key, left_fields, right_fields,
                join.within_before_ms or 0, join.within_after_ms or 0,
                DEFAULT_JOIN_GRACE_MS if join.grace_ms is None else join.grace_ms,
                lambda _side, row: _dump_row(row), residual, store=join.store,
            )  # fmt: skip
            self.operator = self.stream_stream
        self.stores = [store.name for store in join.state()]
        self.key_types = [expr.type for expr in join.left_keys]
        self.post = _chain(spec.post, udfs)
        self._build_output(spec)
        self.tasks: dict[int, PortQueues] = {}
        self.stream_time: dict[int, int] = {}
        self.positions: dict[tuple[str, int], int] = {}
        self.last_event_time_ms: int | None = None
        self.max_idle_ms = MAX_TASK_IDLE_MS
        # Whether a port's partition has nothing more to read now: True, False (more records
        # are known to be there) or None (not known yet). The pod asks its consumer; offline
        # every input is there from the start.
        self.caught_up: Callable[[str, int, int | None], bool | None] = lambda t, p, o: True
        self.dedup = Deduplicator(self.store, backend)
        self.restored()

    # -- construction ----------------------------------------------------------------------

    def _build_output(self, spec: JoinStageSpec) -> None:
        output = spec.output
        registry = self.settings.registry
        state_id = self.settings.state_id or self.settings.query_id
        self.rekey = (
            compile_values([e for _, e in spec.rekey.keys], self.settings.udfs)
            if spec.rekey is not None
            else None
        )
        if isinstance(output, Repartition):
            self.output_topic = internal_topic(state_id, output.topic_suffix)
            self.encode_value = value_serde(Format.JSON, _columns(output.schema))
            self.rekey = compile_values([e for _, e in output.keys], self.settings.udfs)
            self.encode_key: KeySerde | None = key_serde(
                spec.output_key_format,
                [Column(f"k{i}", e.type) for i, (_, e) in enumerate(output.keys)],
            )
            self.limits = DEFAULT_LIMITS
            self._limits_ready(True)
            return
        assert isinstance(output, Sink)
        self.output_topic = output.topic
        self.encode_value = value_serde(
            output.value_format, sink_value_columns(output.schema, self.settings.compatibility),
            registry=registry, subject=f"{output.topic}-value",
        )  # fmt: skip
        types = [e.type for _, e in spec.rekey.keys] if spec.rekey is not None else self.key_types
        key_format = output.key_format
        if key_format is Format.KAFKA and len(types) > 1:
            key_format = Format.JSON
        self.encode_key = key_serde(
            key_format, [Column(f"k{i}", t) for i, t in enumerate(types)],
            registry=registry, subject=f"{output.topic}-key",
        )  # fmt: skip
        self.limits = self.settings.output_limits
        self._limits_ready(False)

    def _limits_ready(self, repartition: bool) -> None:
        self.repartition = repartition
        self.largest_output = self.limits.max_message_bytes - RECORD_OVERHEAD - 64

    # -- input -----------------------------------------------------------------------------

    def _task(self, partition: int) -> PortQueues:
        task = self.tasks.get(partition)
        if task is None:
            task = PortQueues([not s for s in self.stream_ports], time.time() * 1000)
            for port, topic in enumerate(self.input_topics):
                task.next_offset[port] = self.positions.get((topic, partition))
            self.tasks[partition] = task
        return task

    def assigned(self, topic: str, partition: int, start: int, end: int) -> None:
        """A port's partition is read from offset `start`; `end` is its end offset now. A
        table port is read up to `end` before any stream record is joined (bootstrap)."""
        port = self.port_of[topic]
        task = self._task(partition)
        task.next_offset[port] = start
        if start < end and not self.stream_ports[port]:
            task.bootstrap_end[port] = end

    def process(self, batch: Sequence[KafkaRecord], out: RecordSink) -> None:
        """Queue the batch's records, then process what the port order allows. Batches come
        in long runs of one topic-partition: the run's queue and reader are kept in locals."""
        touched: set[int] = set()
        port_of = self.port_of
        tombstone_keys = self.tombstone_keys
        run_topic: str | None = None
        run_partition = -1
        queue: Any = None
        reader: _PortReader | None = None
        table_key: Callable[[Row], tuple[object, ...]] | None = None
        port = 0
        count = 0
        for record in batch:
            if record.error() is not None:
                continue
            topic = record.topic()
            partition: int = record.partition()  # type: ignore[assignment]
            if topic != run_topic or partition != run_partition:
                found = port_of.get(topic or "")
                if found is None:
                    continue
                port, run_topic, run_partition = found, topic, partition
                queue = self._task(partition).queues[port]
                reader = self.readers[port]
                table_key = tombstone_keys[port]
                touched.add(partition)
            assert reader is not None
            count += 1
            offset: int = record.offset()  # type: ignore[assignment]
            try:
                row, key_row, event_time = reader.read(record)
            except QueryFailed:
                raise
            except Exception as error:
                self._bad_record(record, error, out, reader.topic)
                queue.append(Queued(NEVER, offset, record, None, None, True))
                continue
            key = None
            if row is None and key_row is not None and table_key is not None:
                key = table_key(key_row)
            queue.append(Queued(event_time, offset, record, row, key))
        self.counters.records_in += count
        now = time.time() * 1000
        for partition in sorted(touched):
            self._drain(partition, out, now, final=False)

    def _drain(self, partition: int, out: RecordSink, now_ms: float, final: bool) -> None:
        task = self.tasks.get(partition)
        if task is None:
            return
        topics = self.input_topics
        caught_up = self.caught_up

        def port_caught_up(port: int) -> bool | None:
            return caught_up(topics[port], partition, task.next_offset[port])

        operator = self.operator
        process = operator.process
        on_watermark = operator.on_watermark
        stream_stream = self.stream_stream
        late_before = stream_stream.late if stream_stream is not None else 0
        lateness = self.settings.lateness_ms
        positions = self.positions
        now = int(now_ms)
        while True:
            taken = task.take(now_ms, self.max_idle_ms, port_caught_up, final)
            if taken is None:
                break
            port, run = taken
            positions[(topics[port], partition)] = run[-1].offset + 1
            stream = self.stream_ports[port]
            internal = self.readers[port].internal
            stream_time = self.stream_time.get(partition, NEVER)
            origin = f"{port}/{partition}"
            if stream and self.stream_table is not None:
                latest = self._lookup_run(run, partition, port, out, now, origin)
                if latest > stream_time:
                    self.stream_time[partition] = self.last_event_time_ms = latest
                continue
            for item in run:
                if item.failed:
                    continue
                record = item.record
                if internal and self.dedup.duplicate(record.headers(), partition, port):
                    self.counters.duplicates += 1
                    continue
                row, time_ms = item.row, item.time_ms
                if row is None and item.key is None:
                    continue  # a stream record without a value
                try:
                    outputs = process(port, partition, row, time_ms, item.key)
                    if stream and time_ms > stream_time:
                        stream_time = time_ms
                        self.stream_time[partition] = time_ms
                        self.last_event_time_ms = time_ms
                        if stream_stream is not None:
                            expired = on_watermark(partition, time_ms - lateness)
                            if expired:
                                outputs = outputs + expired
                    if outputs:
                        self._emit(outputs, out, origin, item.offset, now)
                except QueryFailed:
                    raise
                except Exception as error:
                    self._bad_record(record, error, out, topics[port])
        if stream_stream is not None:
            late = stream_stream.late - late_before
            if late:
                self.counters.late += late

    # -- output ----------------------------------------------------------------------------

    def _lookup_run(
        self,
        run: list[Queued],
        partition: int,
        port: int,
        out: RecordSink,
        now_ms: int,
        origin: str,
    ) -> int:
        """The stream side of a stream-table join, with the lookup and the one output of each
        record inlined (the hot path of enrichment): the rules of
        `StreamTableJoinOperator.process` and `_emit`. Returns the run's latest event time."""
        join = self.stream_table
        assert join is not None
        rows = join.table.get(partition, {})
        key_of, residual = join.stream_key, join.residual
        padding = join.padding if join.kind is JoinKind.LEFT else None
        post, rekey, encode_key = self.post, self.rekey, self.encode_key
        encode_value = self.encode_value.encode
        send, topic = out.send, self.output_topic
        limits, largest = self.limits, self.largest_output
        low, high = now_ms - limits.max_past_ms, now_ms + limits.max_future_ms
        repartition = self.repartition
        duplicate = self.dedup.duplicate if self.readers[port].internal else None
        headers: Headers | None = None
        written = 0
        latest = NEVER
        for item in run:
            row = item.row
            if row is None or item.failed:
                continue
            if duplicate is not None and duplicate(item.record.headers(), partition, port):
                self.counters.duplicates += 1
                continue
            time_ms = item.time_ms
            if time_ms > latest:
                latest = time_ms
            try:
                key = key_of(row)
                found = None if None in key else rows.get(key)
                joined = None
                if found is not None:
                    joined = {**row, **found}
                    if residual is not None and not residual(joined):
                        joined = None
                if joined is None:
                    if padding is None:
                        continue
                    joined = {**row, **padding}
                if post is not None:
                    joined = post(joined)
                    if joined is None:
                        continue
                values = rekey(joined) if rekey is not None else key
                key_bytes = (
                    encode_key.encode(values)
                    if encode_key is not None and None not in values
                    else None
                )
                value = encode_value(joined)
                assert value is not None
                if (
                    len(value) + (len(key_bytes) if key_bytes else 0) > largest
                    or (key_bytes is None and limits.compacted)
                    or not low <= time_ms <= high
                ):
                    limits.check(topic, key_bytes, value, time_ms, now_ms, 64)
                if repartition:
                    headers = [origin_header(origin, item.offset)]
                send(topic, key_bytes, value, time_ms, headers)
                written += 1
            except QueryFailed:
                raise
            except Exception as error:
                self._bad_record(item.record, error, out, self.input_topics[port])
        self.counters.records_out += written
        return latest

    def _emit(
        self,
        outputs: Sequence[Output],
        out: RecordSink,
        origin: str | None,
        offset: int,
        now_ms: int,
    ) -> None:
        """Send the join's outputs; all are encoded before any is sent, so a failing one
        sends nothing for its input record."""
        prepared: list[tuple[bytes | None, bytes | None, int, Headers | None]] = []
        headers: Headers | None = None
        repartition = self.repartition and origin is not None
        post, rekey, encode_key = self.post, self.rekey, self.encode_key
        encode_value = self.encode_value.encode
        largest = self.largest_output
        limits = self.limits
        low, high = now_ms - limits.max_past_ms, now_ms + limits.max_future_ms
        for output in outputs:
            row = output.row
            if row is None:  # a table's tombstone of its key
                if encode_key is None or None in output.key:
                    continue
                prepared.append((encode_key.encode(output.key), None, output.time_ms, None))
                continue
            if post is not None:
                row = post(row)
                if row is None:
                    continue
            values = rekey(row) if rekey is not None else output.key
            key = (
                encode_key.encode(values) if encode_key is not None and None not in values else None
            )
            value = encode_value(row)
            assert value is not None
            if (
                len(value) + (len(key) if key else 0) > largest
                or (key is None and limits.compacted)
                or not low <= output.time_ms <= high
            ):
                limits.check(self.output_topic, key, value, output.time_ms, now_ms, 64)
            if repartition:
                headers = [origin_header(origin, offset, len(prepared))]  # type: ignore[arg-type]
            prepared.append((key, value, output.time_ms, headers))
        send, topic = out.send, self.output_topic
        for key, value, time_ms, headers in prepared:
            send(topic, key, value, time_ms, headers)
        self.counters.records_out += len(prepared)

    # -- errors ----------------------------------------------------------------------------

    def _bad_record(
        self, record: KafkaRecord, error: Exception, out: RecordSink, topic: str
    ) -> None:
        handle_bad_record(self.settings, self.counters, record, error, topic, out)

    def dead_letter_refused(
        self,
        batch: Sequence[KafkaRecord],
        topic: str,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        out: RecordSink,
    ) -> None:
        """A joined row the broker refused for good: dead-lettered itself (it belongs to two
        input records, not one)."""
        headers: Headers = [
            (ERROR_HEADER + "reason", reason.encode()),
            (ERROR_HEADER + "output-topic", topic.encode()),
            (ERROR_HEADER + "query", self.settings.query_id.encode()),
        ]
        now_ms = int(time.time() * 1000)
        send_dead_letter(self.settings, self.counters, key, value, now_ms, headers, out)

    # -- time ------------------------------------------------------------------------------

    def watermark(self, now_ms: float | None = None) -> int:
        if not self.stream_time:
            return NEVER
        return min(self.stream_time.values()) - self.settings.lateness_ms

    def mark_seen(self, partitions: Mapping[int, float]) -> None:
        """Nothing to note: a join task's idle inputs are its port queues' concern."""

    def advance(self, out: RecordSink, now_ms: float | None = None, final: bool = False) -> None:
        """Take what idle ports no longer hold back; at the end of a bounded input take
        everything and expire every buffered row (outer joins emit their padding)."""
        now = time.time() * 1000 if now_ms is None else now_ms
        for partition in sorted(self.tasks):
            self._drain(partition, out, now, final)
            if final and self.stream_stream is not None:
                outputs = self.stream_stream.on_watermark(partition, 1 << 62)
                if outputs:
                    self._emit(outputs, out, None, 0, int(now))

    def backlogged(self) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        """(topic, partition) pairs whose queue is long enough to pause fetching them, and
        those short enough to resume."""
        full: set[tuple[str, int]] = set()
        light: set[tuple[str, int]] = set()
        for partition, task in self.tasks.items():
            for port, topic in enumerate(self.input_topics):
                size = task.size(port)
                if size >= QUEUE_PAUSE:
                    full.add((topic, partition))
                elif size <= QUEUE_RESUME:
                    light.add((topic, partition))
        return full, light

    # -- state -----------------------------------------------------------------------------

    def offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.positions)

    @property
    def is_stateful(self) -> bool:
        return True

    def changes(self) -> StoreWrites:
        writes: StoreWrites = dict(self.operator.changes())
        dedup = self.dedup.changes()
        if dedup:
            writes[DEDUP_STORE] = dedup
        return writes

    def changelog(
        self, writes: Mapping[str, Mapping[bytes, bytes | None]]
    ) -> tuple[dict[bytes, bytes | None], dict[tuple[int, bytes], bytes | None]]:
        """The changelog records of `writes`: each state key with its store's number after
        the partition (the changelog says which store a record belongs to)."""
        tagged: dict[bytes, bytes | None] = {}
        for number, store in enumerate(self.stores):
            for key, value in writes.get(store, {}).items():
                tagged[key[:4] + bytes((number,)) + key[4:]] = value
        return tagged, self.dedup.changelog(writes)

    def restore_writes(
        self, tagged: Mapping[bytes, bytes | None]
    ) -> dict[str, dict[bytes, bytes | None]]:
        """Store writes of changelog records (the inverse of `changelog`)."""
        writes: dict[str, dict[bytes, bytes | None]] = {store: {} for store in self.stores}
        for key, value in tagged.items():
            number = key[4]
            if number < len(self.stores):
                writes[self.stores[number]][key[:4] + key[5:]] = value
        return writes

    def drop_writes(self, partition: int) -> dict[str, dict[bytes, bytes | None]]:
        """Deletes of one partition's state, in every store."""
        return {
            store: {key: None for key, _ in self.backend.scan(store, *partition_range(partition))}
            for store in self.stores
        }

    def restored(self) -> None:
        """Load the committed state behind this executor into its operator."""
        self.dedup.load()
        for store in self.stores:
            entries = self.backend.scan(store)
            if self.table_table is not None:
                self.table_table.load(store, ((k, pickle.loads(v)) for k, v in entries))
            elif self.stream_table is not None:
                self.stream_table.load(((k, _load_row(v)) for k, v in entries))
            elif self.stream_stream is not None:
                buffered = ((k, v[:1] == b"\x01", _load_row(v[1:])) for k, v in entries)
                self.stream_stream.load(store, buffered)

    def retain_partitions(self, owned: set[int]) -> None:
        self.dedup.retain(owned)
        for partition in [p for p in self.tasks if p not in owned]:
            del self.tasks[partition]
        for partition in {p for p in self._state_partitions() if p not in owned}:
            self.operator.drop_partition(partition)
        self.positions = {k: v for k, v in self.positions.items() if k[1] in owned}

    def _state_partitions(self) -> set[int]:
        if self.table_table is not None:
            return self.table_table.partitions()
        if self.stream_table is not None:
            return set(self.stream_table.table)
        assert self.stream_stream is not None
        return {p for side in self.stream_stream.sides for p in side.rows}

    def dedup_keys(self, partition: int) -> list[bytes]:
        return self.dedup.keys(partition)

    def state_entries(self) -> int:
        if self.table_table is not None:
            return self.table_table.entries()
        if self.stream_table is not None:
            return sum(len(rows) for rows in self.stream_table.table.values())
        assert self.stream_stream is not None
        return sum(self.stream_stream.buffered(p) for p in self._state_partitions())
