"""Stateful operators: windowed and running aggregations, DISTINCT.

Hot state lives in memory between checkpoints; `changes()` hands the dirty entries to the
state backend once per checkpoint (one write batch with the offsets). State keys start with
the input partition, so a partition's state can be restored or dropped on its own, and
windows are keyed by their end time in big-endian order, so closing every window up to the
watermark is one ordered range scan.
"""

from __future__ import annotations

import operator
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamhouse_runtime.exec.aggregates import (
    Aggregator,
    Max,
    aggregator,
    compile_fold,
    compile_initialize,
    compile_result_row,
    compile_snapshot,
)
from streamhouse_runtime.exec.windows import hopping, tumbling
from streamhouse_runtime.plan.nodes import Aggregate, WindowAggregate
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.query import EmitMode, WindowKind, WindowSyntax
from streamhouse_runtime.state.backend import StateBackend

Row = dict[str, object]
ValueFunction = Callable[[Row], object]

_PARTITION = struct.Struct(">i")
# Partition, end, start, then the pickled group; end first: range scans close windows in order.
_WINDOW_KEY = struct.Struct(">iQQ")
_TIME_BIAS = 1 << 63  # signed epoch ms -> unsigned order-preserving
_U64 = 0xFFFFFFFFFFFFFFFF
_PICKLE = pickle.HIGHEST_PROTOCOL
_END_START = operator.itemgetter(1, 2)  # closing order of window keys


def _u64(value: int) -> int:
    return (value + _TIME_BIAS) & _U64


def _window_key(partition: int, end: int, start: int, group: tuple[object, ...]) -> bytes:
    bounds = _WINDOW_KEY.pack(partition, (end + _TIME_BIAS) & _U64, (start + _TIME_BIAS) & _U64)
    return bounds + pickle.dumps(group, _PICKLE)


def _parse_window_key(key: bytes) -> tuple[int, int, int, tuple[object, ...]]:
    partition, end, start = _WINDOW_KEY.unpack_from(key)
    return partition, end - _TIME_BIAS, start - _TIME_BIAS, pickle.loads(key[_WINDOW_KEY.size :])


LATEST_INPUT_TIME = "__latest_input_time"  # the hidden accumulator's name in a result row


def _latest_input_time(row: Row) -> object:
    return row.get(LATEST_INPUT_TIME)


def _add_latest_time(
    aggregators: list[Aggregator],
    names: list[str],
    arguments: list[ValueFunction | None],
    time_of: Callable[[Row], object],
) -> None:
    """Append a MAX over the event time, named LATEST_INPUT_TIME (popped from result rows)."""
    aggregators.append(Max(t.BIGINT))
    names.append(LATEST_INPUT_TIME)
    arguments.append(time_of)


@dataclass
class Emitted:
    """One result row of a stateful operator (None row: a tombstone for the key)."""

    key: tuple[object, ...]
    row: Row | None
    timestamp_ms: int
    window: tuple[int, int] | None = None


@dataclass
class _Entry:
    accumulators: list[Any]
    dirty: bool = True
    emitted: bool = False


class NullGroupKey(Exception):
    """A record whose GROUP BY key has a NULL column: dropped and counted, as ksqlDB and
    Kafka Streams do (a NULL key has no group, and a compacted topic refuses it)."""


class _UndoLog:
    """The entries one record changed, to put back when the record fails part-way (an
    overflow in its second window, an output the sink refuses): a record's state changes
    apply only when the whole record succeeded. Cleared after every record that succeeded."""

    __slots__ = ("deleted", "entries", "saved", "snapshot")

    def __init__(
        self,
        entries: dict[Any, _Entry],
        deleted: set[Any],
        snapshot: Callable[[list[Any]], list[Any]],
    ) -> None:
        self.entries, self.deleted, self.snapshot = entries, deleted, snapshot
        self.saved: list[tuple[Any, _Entry | None, bool]] = []

    def remember(self, key: Any) -> None:
        """Keep `key`'s entry as it is now (None: not in memory, reloaded from the store)."""
        entry = self.entries.get(key)
        copy = (
            None
            if entry is None
            else _Entry(self.snapshot(entry.accumulators), entry.dirty, entry.emitted)
        )
        self.saved.append((key, copy, key in self.deleted))

    def created(self, key: Any) -> None:
        """`key` had no entry in memory before this record."""
        self.saved.append((key, None, key in self.deleted))

    def rollback(self) -> None:
        for key, entry, was_deleted in reversed(self.saved):
            if entry is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = entry
            if was_deleted:
                self.deleted.add(key)
            else:
                self.deleted.discard(key)
        self.saved.clear()

    def clear(self) -> None:
        self.saved.clear()


class WindowAggregateOperator:
    """Tumbling, hopping and session windows over a keyed stream."""

    def __init__(
        self,
        node: WindowAggregate,
        group_key: Callable[[Row], tuple[object, ...]],
        arguments: list[ValueFunction | None],
        time_of: Callable[[Row], int | None],
        backend: StateBackend,
        store: str,
        cache_entries: int = 500_000,
        latest_input_time: bool = False,
    ) -> None:
        self.node = node
        self.window = node.window
        self.aggregators: list[Aggregator] = [aggregator(call) for _, call in node.aggregates]
        self.names = [name for name, _ in node.aggregates]
        self.key_names = [name for name, _ in node.group_keys]
        self.group_key = group_key
        self.arguments = list(arguments)
        # ksqlDB (Kafka Streams) stamps a result with the largest input timestamp that went
        # into it: kept as one more accumulator, so undo, merges and checkpoints carry it.
        self.latest_input_time = latest_input_time
        if latest_input_time:
            _add_latest_time(self.aggregators, self.names, self.arguments, time_of)
        self.time_of = time_of
        self.backend = backend
        self.store = store
        self.cache_entries = cache_entries
        self.emit_changes = node.emit is EmitMode.CHANGES
        # (partition, end, start, group) -> entry; insertion order doubles as LRU order.
        self.entries: dict[tuple[int, int, int, tuple[object, ...]], _Entry] = {}
        self.deleted: set[tuple[int, int, int, tuple[object, ...]]] = set()
        self.undo = _UndoLog(self.entries, self.deleted, compile_snapshot(self.aggregators))
        self.late_records = 0
        # Per partition, the latest window end ever written to the store: a newer window
        # cannot be there, so its first touch skips the RocksDB lookup.
        self.stored_max_end: dict[int, int] = {}
        self.fold = compile_fold(self.aggregators, self.arguments)
        self.initialize = compile_initialize(self.aggregators)
        self.result_row = compile_result_row(self.key_names, self.names, self.aggregators)
        # ksqlDB reports a session's end as its last event's time, not the end plus the gap.
        ksql_session = self.window.kind is WindowKind.SESSION and (
            self.window.syntax is WindowSyntax.KSQL
        )
        self.end_shift = (self.window.gap_ms or 0) if ksql_session else 0

    # -- processing ------------------------------------------------------------------------

    def process(self, row: Row, partition: int, offset: int, watermark: int) -> list[Emitted]:
        """Fold one row into its windows; returns updates when EMIT CHANGES."""
        timestamp = self.time_of(row)
        if timestamp is None:
            raise ValueError("event time is NULL")
        group = self.group_key(row)
        if None in group:
            raise NullGroupKey("a GROUP BY column is NULL")
        kind = self.window.kind
        if kind is WindowKind.TUMBLING:
            # The hot path of windowed aggregations: `_entry` and the fold inlined for the
            # usual case of a window already in memory. The fold changes nothing when it
            # fails; only a new entry, or one whose update is emitted, needs the undo log.
            start, end = tumbling(timestamp, self.window.size_ms or 1)
            if end <= watermark:
                self.late_records += 1
                raise LateRecord(timestamp, watermark)
            key = (partition, end, start, group)
            entry = self.entries.get(key)
            if entry is None:
                self.undo.created(key)
                entry = self._entry(key)
            elif self.emit_changes:
                self.undo.remember(key)
            self.fold(entry.accumulators, row, offset)
            entry.dirty = True
            return [self._result(group, start, end, entry)] if self.emit_changes else []
        values = [argument(row) if argument is not None else None for argument in self.arguments]
        if kind is WindowKind.SESSION:
            return self._session(row, group, values, timestamp, partition, offset, watermark)
        windows = hopping(timestamp, self.window.size_ms or 1, self.window.slide_ms or 1)
        emitted: list[Emitted] = []
        accepted = False
        for start, end in windows:
            if end <= watermark:
                continue  # this window already closed
            accepted = True
            self.undo.remember((partition, end, start, group))
            entry = self._entry((partition, end, start, group))
            self._fold(entry, values, offset)
            if self.emit_changes:
                emitted.append(self._result(group, start, end, entry))
        if not accepted:
            self.late_records += 1
            raise LateRecord(timestamp, watermark)
        return emitted

    def _fold(self, entry: _Entry, values: list[object], offset: int) -> None:
        accumulators = entry.accumulators
        for index, (function, value) in enumerate(zip(self.aggregators, values, strict=True)):
            accumulators[index] = function.add(accumulators[index], value, offset)
        entry.dirty = True

    def _session(
        self,
        row: Row,
        group: tuple[object, ...],
        values: list[object],
        timestamp: int,
        partition: int,
        offset: int,
        watermark: int,
    ) -> list[Emitted]:
        gap = self.window.gap_ms or 1
        if timestamp + gap <= watermark:
            self.late_records += 1
            raise LateRecord(timestamp, watermark)
        # Sessions of this key that the record touches: start - gap <= t <= last + gap.
        touching = [
            key for key in self._sessions_of(partition, group) if key[2] - gap <= timestamp < key[1]
        ]
        for key in touching:
            self.undo.remember(key)
        start, last = timestamp, timestamp
        merged = _Entry(self.initialize())
        emitted: list[Emitted] = []
        for key in touching:
            entry = self._entry(key)
            start = min(start, key[2])
            last = max(last, key[1] - gap)
            merged.accumulators = [
                function.merge(a, b)
                for function, a, b in zip(
                    self.aggregators, merged.accumulators, entry.accumulators, strict=True
                )
            ]
            merged.emitted = merged.emitted or entry.emitted
            self._delete(key)
            if self.emit_changes and entry.emitted:
                # Kafka Streams stamps the tombstone of a merged session with its end.
                stamp = key[1] - gap if self.latest_input_time else key[1]
                emitted.append(Emitted(group, None, stamp, (key[2], self._session_end(key))))
        self._fold(merged, values, offset)
        key = (partition, last + gap, start, group)
        self.undo.remember(key)
        self.entries[key] = merged
        self.deleted.discard(key)
        if self.emit_changes:
            emitted.append(self._result(group, start, last + gap, merged))
        return emitted

    def _session_end(self, key: tuple[int, int, int, tuple[object, ...]]) -> int:
        """The end a session's results reported (so its tombstone has the same key)."""
        return key[1] - self.end_shift

    def _sessions_of(
        self, partition: int, group: tuple[object, ...]
    ) -> list[tuple[int, int, int, tuple[object, ...]]]:
        found = {k for k in self.entries if k[0] == partition and k[3] == group}
        prefix = _PARTITION.pack(partition)
        for raw, _ in self.backend.scan(self.store, prefix, _PARTITION.pack(partition + 1)):
            key = _parse_window_key(raw)
            if key[3] == group and key not in self.deleted:
                found.add(key)
        return sorted(found)

    def _entry(self, key: tuple[int, int, int, tuple[object, ...]]) -> _Entry:
        entry = self.entries.get(key)
        if entry is None:
            stored = None
            if key not in self.deleted and key[1] <= self._stored_max_end(key[0]):
                stored = self.backend.get(self.store, _window_key(*key))
            if stored is not None:
                accumulators, emitted = pickle.loads(stored)
                entry = _Entry(accumulators, dirty=False, emitted=emitted)
            else:
                entry = _Entry(self.initialize())
            self.entries[key] = entry
            self.deleted.discard(key)
            if len(self.entries) > self.cache_entries:
                self._evict()
        return entry

    def _stored_max_end(self, partition: int) -> int:
        known = self.stored_max_end.get(partition)
        if known is None:
            prefix = _PARTITION.pack(partition)
            last = self.backend.last_key(self.store, prefix, _PARTITION.pack(partition + 1))
            known = _parse_window_key(last)[1] if last is not None else -(1 << 63)
            self.stored_max_end[partition] = known
        return known

    def _evict(self) -> None:
        """Drop the oldest clean entries; dirty ones stay until the next checkpoint."""
        for key in list(self.entries)[: max(1, len(self.entries) // 10)]:
            if not self.entries[key].dirty:
                del self.entries[key]

    def _delete(self, key: tuple[int, int, int, tuple[object, ...]]) -> None:
        self.entries.pop(key, None)
        self.deleted.add(key)

    def _result(self, group: tuple[object, ...], start: int, end: int, entry: _Entry) -> Emitted:
        entry.emitted = True
        row = self.result_row(group, entry.accumulators)
        reported_end = end - self.end_shift
        row["window_start"] = start
        row["window_end"] = reported_end
        if self.latest_input_time:
            latest = row.pop(LATEST_INPUT_TIME)
            assert isinstance(latest, int)
            return Emitted(group, row, latest, (start, reported_end))
        return Emitted(group, row, max(start, reported_end - 1), (start, reported_end))

    # -- time ------------------------------------------------------------------------------

    def close(self, partition: int, watermark: int) -> list[Emitted]:
        """Close every window of `partition` whose end is at or before the watermark."""
        closing: dict[tuple[int, int, int, tuple[object, ...]], _Entry] = {}
        prefix = _PARTITION.pack(partition)
        upper = prefix + struct.pack(">Q", _u64(watermark + 1))
        for raw, value in self.backend.scan(self.store, prefix, upper):
            key = _parse_window_key(raw)
            if key in self.deleted or key in self.entries:
                continue
            accumulators, emitted = pickle.loads(value)
            closing[key] = _Entry(accumulators, dirty=False, emitted=emitted)
        for key, entry in self.entries.items():
            if key[0] == partition and key[1] <= watermark:
                closing[key] = entry
        results: list[Emitted] = []
        for key in sorted(closing, key=_END_START):
            entry = closing[key]
            if not self.emit_changes:
                results.append(self._result(key[3], key[2], key[1], entry))
            self._delete(key)
        return results

    # -- checkpoints -----------------------------------------------------------------------

    def changes(self) -> dict[bytes, bytes | None]:
        """Dirty entries and deletions since the last call, as backend writes."""
        writes: dict[bytes, bytes | None] = {_window_key(*key): None for key in self.deleted}
        for key, entry in self.entries.items():
            if entry.dirty:
                writes[_window_key(*key)] = pickle.dumps(
                    (entry.accumulators, entry.emitted), _PICKLE
                )
                entry.dirty = False
                if key[1] > self._stored_max_end(key[0]):
                    self.stored_max_end[key[0]] = key[1]
        self.deleted.clear()
        return writes

    def entry_count(self) -> int:
        return len(self.entries)


class AggregateOperator:
    """GROUP BY without a window: a running aggregate per key, emitted as upserts."""

    def __init__(
        self,
        node: Aggregate,
        group_key: Callable[[Row], tuple[object, ...]],
        arguments: list[ValueFunction | None],
        backend: StateBackend,
        store: str,
        cache_entries: int = 500_000,
        latest_input_time: bool = False,
    ) -> None:
        self.node = node
        self.aggregators = [aggregator(call) for _, call in node.aggregates]
        self.names = [name for name, _ in node.aggregates]
        self.key_names = [name for name, _ in node.group_keys]
        self.group_key = group_key
        self.arguments = list(arguments)
        self.latest_input_time = latest_input_time  # see WindowAggregateOperator
        if latest_input_time:
            _add_latest_time(self.aggregators, self.names, self.arguments, _latest_input_time)
        self.backend = backend
        self.store = store
        self.cache_entries = cache_entries
        self.entries: dict[tuple[int, tuple[object, ...]], _Entry] = {}
        self.undo = _UndoLog(self.entries, set(), compile_snapshot(self.aggregators))
        self.fold = compile_fold(self.aggregators, self.arguments)
        self.initialize = compile_initialize(self.aggregators)
        self.result_row = compile_result_row(self.key_names, self.names, self.aggregators)

    @staticmethod
    def _key(partition: int, group: tuple[object, ...]) -> bytes:
        return _PARTITION.pack(partition) + pickle.dumps(group, _PICKLE)

    def process(self, row: Row, partition: int, offset: int, timestamp_ms: int) -> Emitted:
        group = self.group_key(row)
        if None in group:
            raise NullGroupKey("a GROUP BY column is NULL")
        key = (partition, group)
        entry = self.entries.get(key)
        # Every update is emitted: HAVING, the projection or the output may still fail.
        if entry is None:
            self.undo.created(key)
            stored = self.backend.get(self.store, self._key(partition, group))
            if stored is not None:
                accumulators, emitted = pickle.loads(stored)
                entry = _Entry(accumulators, dirty=False, emitted=emitted)
            else:
                entry = _Entry(self.initialize())
            self.entries[key] = entry
            if len(self.entries) > self.cache_entries:
                for old in list(self.entries)[: max(1, len(self.entries) // 10)]:
                    if not self.entries[old].dirty:
                        del self.entries[old]
        else:
            self.undo.remember(key)
        accumulators = entry.accumulators
        if self.latest_input_time:
            row[LATEST_INPUT_TIME] = timestamp_ms  # the hidden accumulator's argument
        self.fold(accumulators, row, offset)
        entry.dirty = True
        result = self.result_row(group, accumulators)
        if self.latest_input_time:
            latest = result.pop(LATEST_INPUT_TIME)
            assert isinstance(latest, int)
            timestamp_ms = latest
        return Emitted(group, result, timestamp_ms)

    def mark_emitted(self, partition: int, group: tuple[object, ...], emitted: bool) -> bool:
        """Record whether the group's current row is visible downstream; returns the old flag."""
        entry = self.entries[(partition, group)]
        before = entry.emitted
        if before != emitted:
            entry.emitted = emitted
            entry.dirty = True
        return before

    def changes(self) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {}
        for (partition, group), entry in self.entries.items():
            if entry.dirty:
                writes[self._key(partition, group)] = pickle.dumps(
                    (entry.accumulators, entry.emitted), _PICKLE
                )
                entry.dirty = False
        return writes

    def entry_count(self) -> int:
        return len(self.entries)


class LateRecord(Exception):
    """A record whose every window already closed."""

    def __init__(self, timestamp_ms: int, watermark_ms: int) -> None:
        super().__init__(
            f"late record: event time {timestamp_ms} is behind the watermark {watermark_ms}"
        )
        self.timestamp_ms = timestamp_ms
        self.watermark_ms = watermark_ms
