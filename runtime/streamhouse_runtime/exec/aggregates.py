"""Aggregate functions as initialize / add / merge / result over a small mutable accumulator.

Accumulators are plain Python values (lists, numbers, sets) so a whole group's state pickles
into one compact value per checkpoint. `merge` combines two session windows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from streamhouse_runtime.exec.functions import DECIMAL_CONTEXT, decimal_quantum
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

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        """Python lines that fold `value` into `slot` in place, or None to call `add`.

        `compile_fold` inlines these so that folding a row is one generated function
        instead of one method call per aggregate."""
        return None

    def result_source(self, slot: str) -> str | None:
        """A Python expression for the result of `slot`, or None to call `result`."""
        return None

    def initial_source(self) -> str | None:
        """A Python expression for a fresh accumulator, or None to call `initialize`."""
        return None


DECIMAL_ADD = "_decimal_add"  # DECIMAL_CONTEXT.add, by this name in generated folds


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

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        return [f"{slot} += 1"]

    def result_source(self, slot: str) -> str | None:
        return slot


class Count(CountStar):
    """COUNT(x): rows where x is not NULL."""

    def add(self, accumulator: int, value: Any, offset: int) -> int:
        return accumulator if value is None else accumulator + 1

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        return [f"if {value} is not None:", f"    {slot} += 1"]


class CountDistinct(Aggregator):
    def initialize(self) -> set[Any]:
        return set()

    def add(self, accumulator: set[Any], value: Any, offset: int) -> set[Any]:
        if value is not None:
            accumulator.add(value)
        return accumulator

    def merge(self, a: set[Any], b: set[Any]) -> set[Any]:
        return a | b

    def result(self, accumulator: set[Any]) -> int:
        return len(accumulator)


def _plus(a: Any, b: Any) -> Any:
    """a + b; DECIMALs in the wide context, so a DECIMAL(38) sum is never rounded."""
    return DECIMAL_CONTEXT.add(a, b) if isinstance(a, Decimal) else a + b


class Sum(Aggregator):
    """SUM: NULL until a non-NULL value arrives. DECIMAL sums add in DECIMAL_CONTEXT (Python's
    default context keeps only 28 digits)."""

    def __init__(self, result_type: SqlType) -> None:
        super().__init__(result_type)
        self.quantum = _result_quantum(result_type)

    def initialize(self) -> Any:
        return None

    def initial_source(self) -> str | None:
        return "None"

    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        return value if accumulator is None else _plus(accumulator, value)

    def merge(self, a: Any, b: Any) -> Any:
        if a is None or b is None:
            return b if a is None else a
        return _plus(a, b)

    def result(self, accumulator: Any) -> Any:
        return _quantize(accumulator, self.quantum)

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        plus = f"{DECIMAL_ADD}(_a, {value})" if self.quantum is not None else f"_a + {value}"
        return [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    {slot} = {value} if _a is None else {plus}",
        ]


class Avg(Aggregator):
    def __init__(self, result_type: SqlType) -> None:
        super().__init__(result_type)
        self.quantum = _result_quantum(result_type)

    def initialize(self) -> list[Any]:
        return [None, 0]

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

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        plus = f"{DECIMAL_ADD}(_a[0], {value})" if self.quantum is not None else f"_a[0] + {value}"
        return [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    _a[0] = {value} if _a[0] is None else {plus}",
            "    _a[1] += 1",
        ]


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

    def fold_source(self, slot: str, value: str) -> list[str] | None:
        return [
            f"if {value} is not None:",
            f"    _a = {slot}",
            f"    if _a is None or {value} {self._better} _a:",
            f"        {slot} = {value}",
        ]


class Max(Min):
    _better = ">"

    def add(self, accumulator: Any, value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        return value if accumulator is None or value > accumulator else accumulator


class CollectList(Aggregator):
    def initialize(self) -> list[Any]:
        return []

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

    def add(self, accumulator: dict[Any, None], value: Any, offset: int) -> dict[Any, None]:
        if value is not None:
            accumulator.setdefault(value, None)
        return accumulator

    def merge(self, a: dict[Any, None], b: dict[Any, None]) -> dict[Any, None]:
        return {**a, **b}

    def result(self, accumulator: dict[Any, None]) -> list[Any]:
        return list(accumulator)


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
    """One generated function folding a row into every accumulator of a group, in place."""
    namespace: dict[str, Any] = {DECIMAL_ADD: DECIMAL_CONTEXT.add}
    lines = ["def fold(acc, row, offset):"]
    for index, (function, argument) in enumerate(zip(aggregators, arguments, strict=True)):
        value = f"_v{index}"
        if argument is not None:
            namespace[f"_arg{index}"] = argument
            lines.append(f"    {value} = _arg{index}(row)")
        else:
            lines.append(f"    {value} = None")
        inline = function.fold_source(f"acc[{index}]", value)
        if inline is None:
            namespace[f"_add{index}"] = function.add
            inline = [f"acc[{index}] = _add{index}(acc[{index}], {value}, offset)"]
        lines += [f"    {line}" for line in inline]
    if len(lines) == 1:
        lines.append("    pass")
    exec(compile("\n".join(lines), "<streamhouse-fold>", "exec"), namespace)
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
    return implementations[name](call.type)
