"""Aggregate functions as initialize / add / merge / result over a small mutable accumulator.

Accumulators are plain Python values (lists, numbers, sets) so a whole group's state pickles
into one compact value per checkpoint. `merge` combines two session windows.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from streamhouse_runtime.exec.functions import DECIMAL_CONTEXT, decimal_limit, decimal_quantum
from streamhouse_runtime.sql.bound import AggregateCall
from streamhouse_runtime.sql.types import SqlType, TypeKind


class Aggregator(ABC):
    def __init__(self, result_type: SqlType) -> None:
        self.result_type = result_type

    @abstractmethod
    def initialize(self) -> Any:
        """A fresh accumulator."""

    @abstractmethod
    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        """Fold one input value in; returns the (possibly new) accumulator."""

    @abstractmethod
    def merge(self, a: Any, b: Any) -> Any:
        """Combine two accumulators (session windows merging)."""

    @abstractmethod
    def result(self, accumulator: Any) -> Any:
        """The SQL value of the aggregate."""

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        """Python lines that fold `value` into `slot`, as (checks, applies), or None to call
        `add` (which then must not fail part-way).

        The checks compute into the temporary `new` and may raise (an overflow); the
        applies only assign. `compile_fold` runs every aggregate's checks before any apply,
        so a record that fails leaves the accumulators as they were. Inlining makes folding
        a row one generated function instead of one method call per aggregate."""
        return None

    def check_source(self, value: str) -> list[str]:
        """Checks run before `add` for aggregators that have no inline fold."""
        return []

    def fold_constants(self, new: str) -> dict[str, Any]:
        """Names the lines of `fold_source` use, bound in the generated function."""
        return {}

    def snapshot_source(self, slot: str) -> str:
        """A Python expression copying `slot` so that later folds cannot change the copy
        (immutable accumulators are their own copy)."""
        return slot

    def result_source(self, slot: str) -> str | None:
        """A Python expression for the result of `slot`, or None to call `result`."""
        return None

    def initial_source(self) -> str | None:
        """A Python expression for a fresh accumulator, or None to call `initialize`."""
        return None


DECIMAL_ADD = "_decimal_add"  # DECIMAL_CONTEXT.add, by this name in generated folds
OVERFLOW = "_sum_overflow"  # sum_overflow, by this name in generated folds
FoldSource = tuple[list[str], list[str]] | None


def sum_overflow(value: Any, result_type: SqlType) -> None:
    """Raised from a fold when a SUM leaves its result type (standard SQL: an error)."""
    if result_type.kind in (TypeKind.INTEGER, TypeKind.BIGINT):
        raise ArithmeticError(f"integer overflow: SUM {value} is out of the range of {result_type}")
    raise ArithmeticError(f"SUM {value} is out of the range of {result_type}")


def _unreachable_overflow(result_type: SqlType, argument_type: SqlType | None) -> bool:
    """A DECIMAL SUM whose result has 18 or more integer digits more than its argument:
    leaving the result type takes at least 10^18 records, so the per-record range check (two
    Decimal comparisons, more than the addition costs) is skipped."""
    if result_type.kind is not TypeKind.DECIMAL or argument_type is None:
        return False
    if argument_type.kind is not TypeKind.DECIMAL:
        return False
    result_digits = (result_type.precision or 0) - (result_type.scale or 0)
    argument_digits = (argument_type.precision or 0) - (argument_type.scale or 0)
    return argument_type.precision is not None and result_digits - argument_digits >= 18


def _bounds(sql_type: SqlType) -> tuple[Any, Any] | None:
    """Inclusive range of a SUM's result type: integers by width, DOUBLE finite, DECIMAL by
    precision."""
    if sql_type.kind is TypeKind.INTEGER:
        return -(1 << 31), (1 << 31) - 1
    if sql_type.kind is TypeKind.BIGINT:
        return -(1 << 63), (1 << 63) - 1
    if sql_type.kind is TypeKind.DOUBLE:
        return -sys.float_info.max, sys.float_info.max
    if sql_type.kind is TypeKind.DECIMAL and sql_type.precision is not None:
        limit = decimal_limit(sql_type.precision, sql_type.scale or 0)
        # Exclusive in SQL terms; the largest value below the limit at the type's scale.
        step = decimal_quantum(sql_type.scale or 0)
        return -(limit - step), limit - step
    return None


def _quantize(value: Any, quantum: Decimal | None) -> Any:
    """A DECIMAL result at its declared scale (`quantum` is None for other result types)."""
    if quantum is not None and isinstance(value, Decimal):
        return DECIMAL_CONTEXT.quantize(value, quantum)
    return value


def _result_quantum(sql_type: SqlType) -> Decimal | None:
    if sql_type.kind is TypeKind.DECIMAL and sql_type.scale is not None:
        return decimal_quantum(sql_type.scale)
    return None


class CountStar(Aggregator):
    def initialize(self) -> int:
        return 0

    def initial_source(self) -> str | None:
        return "0"

    def add(self, accumulator: int, value: Any, offset: int) -> int:
        return accumulator + 1

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, accumulator: int) -> int:
        return accumulator

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        return [], [f"{slot} += 1"]

    def result_source(self, slot: str) -> str | None:
        return slot


class Count(CountStar):
    """COUNT(x): rows where x is not NULL."""

    def add(self, accumulator: int, value: Any, offset: int) -> int:
        return accumulator if value is None else accumulator + 1

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        return [], [f"if {value} is not None:", f"    {slot} += 1"]


class CountDistinct(Aggregator):
    def initialize(self) -> set[Any]:
        return set()

    def snapshot_source(self, slot: str) -> str:
        return f"set({slot})"

    def add(self, accumulator: set[Any], value: Any, offset: int) -> set[Any]:
        if value is not None:
            accumulator.add(value)
        return accumulator

    def merge(self, a: set[Any], b: set[Any]) -> set[Any]:
        return a | b

    def check_source(self, value: str) -> list[str]:
        return _hashable_check(value)

    def result(self, accumulator: set[Any]) -> int:
        return len(accumulator)


def _hashable_check(value: str) -> list[str]:
    # A value that cannot be a set member (an ARRAY, a MAP) fails before anything changed.
    return [f"if {value} is not None:", f"    hash({value})"]


def _plus(a: Any, b: Any) -> Any:
    """a + b; DECIMALs in the wide context, so a DECIMAL(38) sum is never rounded."""
    return DECIMAL_CONTEXT.add(a, b) if isinstance(a, Decimal) else a + b


class Sum(Aggregator):
    """SUM: NULL until a non-NULL value arrives. DECIMAL sums add in DECIMAL_CONTEXT (Python's
    default context keeps only 28 digits)."""

    def __init__(self, result_type: SqlType, argument_type: SqlType | None = None) -> None:
        super().__init__(result_type)
        self.quantum = _result_quantum(result_type)
        self.bounds = _bounds(result_type)
        if _unreachable_overflow(result_type, argument_type):
            self.bounds = None  # comparing Decimals costs more than the fold itself

    def fold_constants(self, new: str) -> dict[str, Any]:
        if self.bounds is None:
            return {}
        low, high = self.bounds
        return {f"_low{new}": low, f"_high{new}": high, f"_type{new}": self.result_type}

    def _checked(self, total: Any) -> Any:
        if self.bounds is not None and not self.bounds[0] <= total <= self.bounds[1]:
            sum_overflow(total, self.result_type)
        return total

    def initialize(self) -> Any:
        return None

    def initial_source(self) -> str | None:
        return "None"

    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        return self._checked(value if accumulator is None else _plus(accumulator, value))

    def merge(self, a: Any, b: Any) -> Any:
        if a is None or b is None:
            return b if a is None else a
        return self._checked(_plus(a, b))

    def result(self, accumulator: Any) -> Any:
        return _quantize(accumulator, self.quantum)

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        plus = f"{DECIMAL_ADD}(_a, {value})" if self.quantum is not None else f"_a + {value}"
        checks = [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    {new} = {value} if _a is None else {plus}",
        ]
        if self.bounds is not None:
            checks += [
                f"    if not _low{new} <= {new} <= _high{new}:",
                f"        {OVERFLOW}({new}, _type{new})",
            ]
        return checks, [f"if {value} is not None:", f"    {slot} = {new}"]


class Avg(Aggregator):
    def __init__(self, result_type: SqlType) -> None:
        super().__init__(result_type)
        self.quantum = _result_quantum(result_type)

    def initialize(self) -> list[Any]:
        return [None, 0]

    def snapshot_source(self, slot: str) -> str:
        return f"{slot}[:]"

    def add(self, accumulator: list[Any], value: Any, offset: int) -> list[Any]:
        if value is not None:
            accumulator[0] = value if accumulator[0] is None else _plus(accumulator[0], value)
            accumulator[1] += 1
        return accumulator

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        if a[0] is None or b[0] is None:
            return b if a[0] is None else a
        return [_plus(a[0], b[0]), a[1] + b[1]]

    def result(self, accumulator: list[Any]) -> Any:
        total, count = accumulator
        if total is None or count == 0:
            return None
        if isinstance(total, Decimal):
            return _quantize(DECIMAL_CONTEXT.divide(total, count), self.quantum)
        return float(total) / count

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        plus = f"{DECIMAL_ADD}(_a[0], {value})" if self.quantum is not None else f"_a[0] + {value}"
        checks = [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    {new} = {value} if _a[0] is None else {plus}",
        ]
        applies = [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    _a[0] = {new}",
            "    _a[1] += 1",
        ]
        return checks, applies


class Min(Aggregator):
    def initialize(self) -> Any:
        return None

    def initial_source(self) -> str | None:
        return "None"

    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        return value if accumulator is None or value < accumulator else accumulator

    def merge(self, a: Any, b: Any) -> Any:
        return self.add(a, b, 0)

    def result(self, accumulator: Any) -> Any:
        return accumulator

    def result_source(self, slot: str) -> str | None:
        return slot

    _better = "<"

    def fold_source(self, slot: str, value: str, new: str) -> FoldSource:
        better = f"{value} {self._better} {slot}"
        checks = [f"{new} = {value} is not None and ({slot} is None or {better})"]
        return checks, [f"if {new}:", f"    {slot} = {value}"]


class Max(Min):
    _better = ">"

    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        return value if accumulator is None or value > accumulator else accumulator


class CollectList(Aggregator):
    def initialize(self) -> list[Any]:
        return []

    def snapshot_source(self, slot: str) -> str:
        return f"{slot}[:]"

    def add(self, accumulator: list[Any], value: Any, offset: int) -> list[Any]:
        if value is not None:
            accumulator.append(value)
        return accumulator

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return a + b

    def result(self, accumulator: list[Any]) -> list[Any]:
        return list(accumulator)


class CollectSet(Aggregator):
    """COLLECT_SET keeps first-seen order, so results are deterministic."""

    def initialize(self) -> dict[Any, None]:
        return {}

    def snapshot_source(self, slot: str) -> str:
        return f"dict({slot})"

    def add(self, accumulator: dict[Any, None], value: Any, offset: int) -> dict[Any, None]:
        if value is not None:
            accumulator.setdefault(value, None)
        return accumulator

    def merge(self, a: dict[Any, None], b: dict[Any, None]) -> dict[Any, None]:
        return {**a, **b}

    def result(self, accumulator: dict[Any, None]) -> list[Any]:
        return list(accumulator)

    def check_source(self, value: str) -> list[str]:
        return _hashable_check(value)


class EarliestByOffset(Aggregator):
    """The value with the lowest input offset (the accumulator is [offset, value])."""

    def initialize(self) -> list[Any]:
        return [None, None]

    def add(self, accumulator: list[Any], value: Any, offset: int) -> list[Any]:
        if value is not None and (accumulator[0] is None or offset < accumulator[0]):
            return [offset, value]
        return accumulator

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return self.add(a, b[1], b[0]) if b[0] is not None else a

    def result(self, accumulator: list[Any]) -> Any:
        return accumulator[1]


class LatestByOffset(EarliestByOffset):
    def add(self, accumulator: list[Any], value: Any, offset: int) -> list[Any]:
        if value is not None and (accumulator[0] is None or offset >= accumulator[0]):
            return [offset, value]
        return accumulator


Fold = Callable[[list[Any], dict[str, object], int], None]


def compile_fold(
    aggregators: Sequence[Aggregator],
    arguments: Sequence[Callable[[dict[str, object]], object] | None],
) -> Fold:
    """One generated function folding a row into every accumulator of a group, in place.

    It evaluates every argument and runs every check first, then applies: a record whose
    argument or fold fails (an overflowing SUM) changes nothing."""
    namespace: dict[str, Any] = {
        DECIMAL_ADD: DECIMAL_CONTEXT.add,
        OVERFLOW: sum_overflow,
    }
    evaluate: list[str] = []
    checks: list[str] = []
    applies: list[str] = []
    for index, (function, argument) in enumerate(zip(aggregators, arguments, strict=True)):
        value, new = f"_v{index}", f"_n{index}"
        if argument is not None:
            namespace[f"_arg{index}"] = argument
            evaluate.append(f"{value} = _arg{index}(row)")
        else:
            evaluate.append(f"{value} = None")
        namespace.update(function.fold_constants(new))
        inline = function.fold_source(f"acc[{index}]", value, new)
        if inline is None:
            namespace[f"_add{index}"] = function.add
            checks += function.check_source(value)
            applies.append(f"acc[{index}] = _add{index}(acc[{index}], {value}, offset)")
        else:
            checks += inline[0]
            applies += inline[1]
    body = evaluate + checks + applies or ["pass"]
    source = "\n".join(["def fold(acc, row, offset):", *(f"    {line}" for line in body)])
    exec(compile(source, "<streamhouse-fold>", "exec"), namespace)
    fold: Fold = namespace["fold"]
    return fold


def compile_initialize(aggregators: Sequence[Aggregator]) -> Callable[[], list[Any]]:
    """One generated function making a new group's accumulators (one list display)."""
    namespace: dict[str, Any] = {}
    items = []
    for index, function in enumerate(aggregators):
        value = function.initial_source()
        if value is None:
            namespace[f"_initialize{index}"] = function.initialize
            value = f"_initialize{index}()"
        items.append(value)
    source = f"def initialize():\n    return [{', '.join(items)}]\n"
    exec(compile(source, "<streamhouse-initialize>", "exec"), namespace)
    initialize: Callable[[], list[Any]] = namespace["initialize"]
    return initialize


def compile_snapshot(aggregators: Sequence[Aggregator]) -> Callable[[list[Any]], list[Any]]:
    """One generated function copying a group's accumulators, to restore them when the
    record that changes them fails later on (in its projection, HAVING or output)."""
    items = [function.snapshot_source(f"acc[{i}]") for i, function in enumerate(aggregators)]
    source = f"def snapshot(acc):\n    return [{', '.join(items)}]\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<streamhouse-snapshot>", "exec"), namespace)
    snapshot: Callable[[list[Any]], list[Any]] = namespace["snapshot"]
    return snapshot


ResultRow = Callable[[tuple[object, ...], list[Any]], dict[str, object]]


def compile_result_row(
    key_names: Sequence[str], names: Sequence[str], aggregators: Sequence[Aggregator]
) -> ResultRow:
    """One generated function building a group's result row from its key values and
    accumulators: the key columns, then each aggregate's result (one dict display)."""
    namespace: dict[str, Any] = {}
    items = [f"{name!r}: group[{index}]" for index, name in enumerate(key_names)]
    for index, (name, function) in enumerate(zip(names, aggregators, strict=True)):
        value = function.result_source(f"acc[{index}]")
        if value is None:
            namespace[f"_result{index}"] = function.result
            value = f"_result{index}(acc[{index}])"
        items.append(f"{name!r}: {value}")
    source = f"def result_row(group, acc):\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, "<streamhouse-result>", "exec"), namespace)
    result_row: ResultRow = namespace["result_row"]
    return result_row


def aggregator(call: AggregateCall) -> Aggregator:
    """The implementation of one bound aggregate call."""
    # Imported here: that module's aggregators build on this module's base class.
    from streamhouse_runtime.exec.ksql_aggregates import ksql_aggregator

    found = ksql_aggregator(call)
    if found is not None:
        return found
    name = call.function
    if name == "COUNT":
        if not call.args:
            return CountStar(call.type)
        return CountDistinct(call.type) if call.distinct else Count(call.type)
    implementations: dict[str, type[Aggregator]] = {
        "SUM": Sum,
        "AVG": Avg,
        "MIN": Min,
        "MAX": Max,
        "COLLECT_LIST": CollectList,
        "COLLECT_SET": CollectSet,
        "EARLIEST_BY_OFFSET": EarliestByOffset,
        "LATEST_BY_OFFSET": LatestByOffset,
    }
    if name == "SUM":
        return Sum(call.type, call.args[0].type if call.args else None)
    return implementations[name](call.type)
