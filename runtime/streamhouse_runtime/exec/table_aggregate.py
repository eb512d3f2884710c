"""Aggregating a TABLE: an updating aggregate, as Kafka Streams' KTable groupBy + aggregate
with an adder and a subtractor, and Flink's retracting group aggregation.

Two operators, one per stage, with a repartition topic between them:

- `TableRowsOperator` (the table's stage) keeps each table key's previous row (the record
  key gives the table key; a tombstone, or a row the WHERE clause drops, deletes it). Each
  change becomes the retraction of the previous row, sent to the old group's partition, and
  the addition of the new row, sent to the new group's.
- `UpdatingAggregateOperator` (the aggregate's stage) adds and retracts: COUNT, SUM and AVG
  by subtraction; every other aggregate from the group's multiset of input values, kept in
  the state (distinct values with their counts; COLLECT_LIST and values that cannot be dict
  keys as a list in arrival order), and the result computed again from it after a change
  (MIN after the current minimum left, TOPK, ...). Aggregates of an input offset
  (EARLIEST_BY_OFFSET, LATEST_BY_OFFSET) cannot be retracted; the front end refuses them.

State keys start with the input partition, values are pickled like the other stateful
operators' (`exec/stateful.py`), and both operators hand their dirty entries to the state
backend once per checkpoint.
"""

from __future__ import annotations

import pickle
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from streamhouse_runtime.exec.aggregates import (
    Aggregator,
    Avg,
    CollectList,
    CollectSet,
    Count,
    CountDistinct,
    CountStar,
    Min,
    Sum,
    aggregator,
)
from streamhouse_runtime.exec.functions import DECIMAL_CONTEXT
from streamhouse_runtime.exec.ksql_aggregates import Attr
from streamhouse_runtime.exec.stateful import Emitted, NullGroupKey, _Entry, _UndoLog
from streamhouse_runtime.plan.nodes import CHANGE_FIELD, Aggregate, ChangeKind
from streamhouse_runtime.sql.types import TypeKind
from streamhouse_runtime.state.backend import StateBackend

Row = dict[str, object]
ValueFunction = Callable[[Row], object]

_PARTITION = struct.Struct(">i")
_PICKLE = pickle.HIGHEST_PROTOCOL
_ABSENT = object()

# Aggregates whose result depends on the input offset of each value: a retraction cannot
# say which of two equal values it takes back (ksqlDB refuses them on a table as well).
NOT_RETRACTABLE = ("EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET")


class TableRowsOperator:
    """Each table key's previous row, per input partition."""

    def __init__(self, backend: StateBackend, store: str, cache_entries: int = 500_000) -> None:
        self.backend = backend
        self.store = store
        self.cache_entries = cache_entries
        self.rows: dict[tuple[int, bytes], Row | None] = {}  # None: deleted
        self.dirty: set[tuple[int, bytes]] = set()
        self.undo = _RowsUndo(self)

    @staticmethod
    def _key(partition: int, key: bytes) -> bytes:
        return _PARTITION.pack(partition) + key

    def change(self, partition: int, key: bytes, row: Row | None) -> Row | None:
        """Make `row` the current row of `key` (None: delete it); returns the previous row."""
        slot = (partition, key)
        previous = self.rows.get(slot, _ABSENT)
        self.undo.saved.append((slot, previous, slot in self.dirty))
        if previous is _ABSENT:
            stored = self.backend.get(self.store, self._key(partition, key))
            previous = pickle.loads(stored) if stored is not None else None
            if len(self.rows) >= self.cache_entries:
                self._evict()
        self.rows[slot] = row
        self.dirty.add(slot)
        assert previous is None or isinstance(previous, dict)
        return previous

    def _evict(self) -> None:
        """Drop the oldest clean rows; dirty ones stay until the next checkpoint."""
        for slot in list(self.rows)[: max(1, len(self.rows) // 10)]:
            if slot not in self.dirty:
                del self.rows[slot]

    def changes(self) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {}
        for slot in self.dirty:
            row = self.rows[slot]
            writes[self._key(*slot)] = None if row is None else pickle.dumps(row, _PICKLE)
            if row is None:
                del self.rows[slot]
        self.dirty.clear()
        return writes

    def entry_count(self) -> int:
        return len(self.rows)


class _RowsUndo:
    """The rows one record changed, to put back when the record fails part-way (its output
    cannot be encoded or is too large), as `exec/stateful.py`'s undo log does."""

    __slots__ = ("operator", "saved")

    def __init__(self, operator: TableRowsOperator) -> None:
        self.operator = operator
        self.saved: list[tuple[tuple[int, bytes], Any, bool]] = []

    def rollback(self) -> None:
        rows, dirty = self.operator.rows, self.operator.dirty
        for slot, previous, was_dirty in reversed(self.saved):
            if previous is _ABSENT:
                rows.pop(slot, None)
            else:
                rows[slot] = previous
            if was_dirty:
                dirty.add(slot)
            else:
                dirty.discard(slot)
        self.saved.clear()

    def clear(self) -> None:
        self.saved.clear()


# -- aggregates that retract -------------------------------------------------------------


class Retractable(ABC):
    """One aggregate of an updating aggregation: add, retract, result."""

    @abstractmethod
    def initialize(self) -> Any:
        """The accumulator of a group without rows."""

    @abstractmethod
    def add(self, accumulator: Any, value: Any) -> Any:
        """The accumulator with `value` added (a new one: the old one may be undone to)."""

    @abstractmethod
    def retract(self, accumulator: Any, value: Any) -> Any:
        """The accumulator with one `value` taken back."""

    @abstractmethod
    def result(self, accumulator: Any) -> Any:
        """The aggregate's value."""

    def snapshot(self, accumulator: Any) -> Any:
        return accumulator


class _Counting(Retractable):
    def __init__(self, star: bool) -> None:
        self.star = star

    def initialize(self) -> int:
        return 0

    def add(self, accumulator: int, value: Any) -> int:
        return accumulator + 1 if self.star or value is not None else accumulator

    def retract(self, accumulator: int, value: Any) -> int:
        return accumulator - 1 if self.star or value is not None else accumulator

    def result(self, accumulator: int) -> int:
        return accumulator


def _minus(a: Any, b: Any) -> Any:
    return DECIMAL_CONTEXT.subtract(a, b) if isinstance(a, Decimal) else a - b


class _Summing(Retractable):
    """SUM and AVG as (total, count of non-NULL values): NULL again once no value is left,
    or, with `subtract_to_zero` (the ksqlDB mode: its SUM undo subtracts), a SUM of 0."""

    def __init__(self, base: Sum | Avg, subtract_to_zero: bool = False) -> None:
        self.base = base
        self.subtract_to_zero = subtract_to_zero

    def initialize(self) -> tuple[Any, int]:
        return (None, 0)

    def add(self, accumulator: tuple[Any, int], value: Any) -> tuple[Any, int]:
        if value is None:
            return accumulator
        total, count = accumulator
        if isinstance(self.base, Sum):
            return (self.base.add(total, value, 0), count + 1)
        added = self.base.add([total, count], value, 0)
        return (added[0], added[1])

    def retract(self, accumulator: tuple[Any, int], value: Any) -> tuple[Any, int]:
        total, count = accumulator
        if value is None or count == 0:
            return accumulator
        if count == 1 and not self.subtract_to_zero:
            return (None, 0)
        return (_minus(total, value), count - 1)

    def result(self, accumulator: tuple[Any, int]) -> Any:
        total, count = accumulator
        if isinstance(self.base, Sum):
            return self.base.result(total)
        return self.base.result([total, count])


class _Multiset(Retractable):
    """Any other aggregate: the group's input values in arrival order; a retraction takes
    back the latest equal value (as ksqlDB's COLLECT_LIST undo does), and the result is the
    aggregate of the values left."""

    def __init__(self, base: Aggregator) -> None:
        self.base = base

    def initialize(self) -> list[Any]:
        return []

    def snapshot(self, accumulator: list[Any]) -> list[Any]:
        return accumulator[:]

    def add(self, accumulator: list[Any], value: Any) -> list[Any]:
        self.base.add(self.base.initialize(), value, 0)  # fails (an overflow) before any change
        accumulator.append(value)
        return accumulator

    def retract(self, accumulator: list[Any], value: Any) -> list[Any]:
        for index in range(len(accumulator) - 1, -1, -1):
            if accumulator[index] == value:
                del accumulator[index]
                break
        return accumulator

    def result(self, accumulator: list[Any]) -> Any:
        folded = self.base.initialize()
        for value in accumulator:
            folded = self.base.add(folded, value, 0)
        return self.base.result(folded)


class _Counted(Retractable):
    """An aggregate of values that need not stay in arrival order: each distinct value with
    how often the group holds it, in first-seen order. A group of a million rows with a
    hundred distinct values keeps a hundred entries, and MIN, MAX, COLLECT_SET and COUNT
    DISTINCT compute their result from the distinct values alone."""

    def __init__(self, base: Aggregator) -> None:
        self.base = base
        self.once = isinstance(base, Min | CollectSet | CountDistinct | Attr)  # Max is a Min

    def initialize(self) -> dict[Any, int]:
        return {}

    def snapshot(self, accumulator: dict[Any, int]) -> dict[Any, int]:
        return dict(accumulator)

    def add(self, accumulator: dict[Any, int], value: Any) -> dict[Any, int]:
        self.base.add(self.base.initialize(), value, 0)  # fails (an overflow) before any change
        accumulator[value] = accumulator.get(value, 0) + 1
        return accumulator

    def retract(self, accumulator: dict[Any, int], value: Any) -> dict[Any, int]:
        count = accumulator.get(value, 0)
        if count > 1:
            accumulator[value] = count - 1
        elif count == 1:
            del accumulator[value]
        return accumulator

    def result(self, accumulator: dict[Any, int]) -> Any:
        folded = self.base.initialize()
        for value, count in accumulator.items():
            for _ in range(1 if self.once else count):
                folded = self.base.add(folded, value, 0)
        return self.base.result(folded)


_UNHASHABLE = (TypeKind.ARRAY, TypeKind.MAP, TypeKind.STRUCT)


def retractable(call: Any, subtract_to_zero: bool = False) -> Retractable:
    """The updating implementation of one bound aggregate call (`subtract_to_zero`: see
    _Summing)."""
    if call.function in NOT_RETRACTABLE:
        raise ValueError(f"{call.function} cannot be retracted")
    base = aggregator(call)
    if type(base) is CountStar:
        return _Counting(star=True)
    if type(base) is Count:
        return _Counting(star=False)
    if type(base) in (Sum, Avg):
        assert isinstance(base, Sum | Avg)
        return _Summing(base, subtract_to_zero)
    if isinstance(base, CollectList) or any(arg.type.kind in _UNHASHABLE for arg in call.args):
        return _Multiset(base)  # arrival order matters, or values that are no dict keys
    return _Counted(base)


# Accumulator slots of a group ahead of the aggregates' own.
_ROWS = 0  # how many table rows the group holds
_LATEST = 1  # the largest input timestamp that went into it
_FIRST = 2


class UpdatingAggregateOperator:
    """GROUP BY over a TABLE's retractions and additions: a result per group, updated in
    place, emitted as an upsert per change.

    A group that no table row is left in is deleted and emitted as a tombstone (Flink's
    rule), or, with `keep_empty_groups` (the ksqlDB mode), kept and emitted with its
    emptied values (Kafka Streams' KTable aggregate deletes nothing: COUNT becomes 0)."""

    def __init__(
        self,
        node: Aggregate,
        group_key: Callable[[Row], tuple[object, ...]],
        arguments: list[ValueFunction | None],
        backend: StateBackend,
        store: str,
        cache_entries: int = 500_000,
        keep_empty_groups: bool = False,
        latest_input_time: bool = False,
    ) -> None:
        self.functions = [
            retractable(call, subtract_to_zero=keep_empty_groups) for _, call in node.aggregates
        ]
        self.names = [name for name, _ in node.aggregates]
        self.key_names = [name for name, _ in node.group_keys]
        self.group_key = group_key
        self.arguments = list(arguments)
        self.backend = backend
        self.store = store
        self.cache_entries = cache_entries
        self.keep_empty_groups = keep_empty_groups
        self.latest_input_time = latest_input_time
        self.entries: dict[tuple[int, tuple[object, ...]], _Entry] = {}
        self.undo = _UndoLog(self.entries, set(), self._snapshot)

    def _snapshot(self, accumulators: list[Any]) -> list[Any]:
        head = accumulators[:_FIRST]
        return head + [
            function.snapshot(value)
            for function, value in zip(self.functions, accumulators[_FIRST:], strict=True)
        ]

    @staticmethod
    def _key(partition: int, group: tuple[object, ...]) -> bytes:
        return _PARTITION.pack(partition) + pickle.dumps(group, _PICKLE)

    def _entry(self, key: tuple[int, tuple[object, ...]]) -> _Entry:
        entry = self.entries.get(key)
        if entry is not None:
            self.undo.remember(key)
            return entry
        self.undo.created(key)
        stored = self.backend.get(self.store, self._key(*key))
        if stored is not None:
            accumulators, emitted = pickle.loads(stored)
            entry = _Entry(accumulators, dirty=False, emitted=emitted)
        else:
            entry = _Entry([0, 0] + [function.initialize() for function in self.functions])
        if len(self.entries) >= self.cache_entries:
            for old in list(self.entries)[: max(1, len(self.entries) // 10)]:
                if not self.entries[old].dirty:
                    del self.entries[old]
        self.entries[key] = entry
        return entry

    def process(self, row: Row, partition: int, timestamp_ms: int) -> Emitted | None:
        """Apply one retraction or addition; returns the group's new result (a None row: the
        group is gone), or None when nothing is to be emitted yet."""
        change = row.pop(CHANGE_FIELD, ChangeKind.ADD)
        group = self.group_key(row)
        if None in group:
            raise NullGroupKey("a GROUP BY column is NULL")
        entry = self._entry((partition, group))
        accumulators = entry.accumulators
        values = [argument(row) if argument is not None else None for argument in self.arguments]
        if change == ChangeKind.ADD:
            updated = [
                function.add(accumulators[_FIRST + index], value)
                for index, (function, value) in enumerate(zip(self.functions, values, strict=True))
            ]
            accumulators[_ROWS] += 1
        elif accumulators[_ROWS] > 0:
            updated = [
                function.retract(accumulators[_FIRST + index], value)
                for index, (function, value) in enumerate(zip(self.functions, values, strict=True))
            ]
            accumulators[_ROWS] -= 1
        else:
            return None  # a retraction of a row this group never held
        accumulators[_FIRST:] = updated
        accumulators[_LATEST] = max(accumulators[_LATEST], timestamp_ms)
        entry.dirty = True
        if change == ChangeKind.REPLACE:
            return None  # the addition that follows emits the group's result
        stamp = accumulators[_LATEST] if self.latest_input_time else timestamp_ms
        if accumulators[_ROWS] == 0 and not self.keep_empty_groups:
            return Emitted(group, None, stamp)
        return Emitted(group, self._result_row(group, accumulators), stamp)

    def _result_row(self, group: tuple[object, ...], accumulators: list[Any]) -> Row:
        row: Row = dict(zip(self.key_names, group, strict=True))
        for index, (name, function) in enumerate(zip(self.names, self.functions, strict=True)):
            row[name] = function.result(accumulators[_FIRST + index])
        return row

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
        for key, entry in list(self.entries.items()):
            if not entry.dirty:
                continue
            entry.dirty = False
            if entry.accumulators[_ROWS] == 0 and not self.keep_empty_groups:
                writes[self._key(*key)] = None  # an empty group is gone
                del self.entries[key]
            else:
                writes[self._key(*key)] = pickle.dumps((entry.accumulators, entry.emitted), _PICKLE)
        return writes

    def entry_count(self) -> int:
        return len(self.entries)
