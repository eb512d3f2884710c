"""ksqlDB's aggregates beyond the SQL core: ranking, counting, by-offset lists, statistics.

Each follows ksqlDB's own implementation (ksqldb-engine `function/udaf/`: `TopkKudaf`,
`TopkDistinctKudaf`, `HistogramUdaf`, `EarliestByOffset`, `LatestByOffset`,
`StandardDeviationSampleUdaf`, `CorrelationUdaf`, `Attr`) for which values count and what a
group with too few values returns; docs/functions.md states each rule.

Accumulators are plain lists, tuples and dicts, pickled with the group like the core
aggregates' state. `add` returns a new accumulator instead of changing the old one (only
HISTOGRAM's map, copied by its snapshot, changes in place), and nothing in it can fail once
the front end has typed the arguments: a record that fails later leaves the state as it was.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from streamhouse_runtime.exec.aggregates import Aggregator, CountDistinct
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql.bound import AggregateCall
from streamhouse_runtime.sql.types import SqlType

HISTOGRAM_LIMIT = 1000  # distinct values a HISTOGRAM counts (ksqlDB's HistogramUdaf.LIMIT)


def _constant(call: AggregateCall, position: int, default: Any) -> Any:
    """A literal argument (the front end refuses anything else), or `default` if absent."""
    if position >= len(call.args):
        return default
    arg = call.args[position]
    return arg.value if isinstance(arg, bound.Literal) else default


class TopK(Aggregator):
    """The k largest values, largest first, duplicates kept; fewer than k values give a
    shorter array (ksqlDB's TopkKudaf). NULLs are ignored."""

    distinct = False

    def __init__(self, result_type: SqlType, k: int) -> None:
        super().__init__(result_type)
        self.k = k

    def initialize(self) -> list[Any]:
        return []

    def add(self, accumulator: list[Any], value: Any, offset: int) -> list[Any]:
        if value is None:
            return accumulator
        if len(accumulator) == self.k and value <= accumulator[-1]:
            return accumulator
        if self.distinct and value in accumulator:
            return accumulator
        return sorted([*accumulator, value], reverse=True)[: self.k]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        merged = a[:]
        for value in b:
            merged = self.add(merged, value, 0)
        return merged

    def result(self, accumulator: list[Any]) -> list[Any]:
        return list(accumulator)


class TopKDistinct(TopK):
    """The k largest distinct values, largest first (ksqlDB's TopkDistinctKudaf)."""

    distinct = True


class Histogram(Aggregator):
    """Each distinct string mapped to how often it occurred (BIGINT); past
    HISTOGRAM_LIMIT distinct values, new ones are not counted (ksqlDB's HistogramUdaf).
    NULL is not counted: ksqlDB counts it under a NULL key (HistogramUdafTest), which no
    output format here can write as a map key."""

    def initialize(self) -> dict[str, int]:
        return {}

    def snapshot_source(self, slot: str) -> str:
        return f"dict({slot})"

    def add(self, accumulator: dict[str, int], value: Any, offset: int) -> dict[str, int]:
        if value is not None and (len(accumulator) < HISTOGRAM_LIMIT or value in accumulator):
            accumulator[value] = accumulator.get(value, 0) + 1
        return accumulator

    def merge(self, a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        merged = dict(a)
        for value, count in b.items():
            if len(merged) < HISTOGRAM_LIMIT or value in merged:
                merged[value] = merged.get(value, 0) + count
        return merged

    def result(self, accumulator: dict[str, int]) -> dict[str, int]:
        return dict(accumulator)


class ByOffset(Aggregator):
    """EARLIEST_BY_OFFSET / LATEST_BY_OFFSET with ksqlDB's optional arguments: a count n
    (the result is then an ARRAY of the n earliest or latest values, in offset order) and
    ignoreNulls (default TRUE; FALSE lets a NULL be the earliest or latest value).

    The accumulator is a tuple of (offset, value) pairs in offset order, at most n long."""

    latest = False

    def __init__(self, result_type: SqlType, count: int | None, ignore_nulls: bool) -> None:
        super().__init__(result_type)
        self.count = count
        self.keep = count or 1
        self.ignore_nulls = ignore_nulls

    def initialize(self) -> tuple[tuple[int, Any], ...]:
        return ()

    def initial_source(self) -> str | None:
        return "()"

    def add(self, accumulator: tuple[Any, ...], value: Any, offset: int) -> tuple[Any, ...]:
        if value is None and self.ignore_nulls:
            return accumulator
        if not self.latest and len(accumulator) == self.keep and offset >= accumulator[-1][0]:
            return accumulator  # the usual case: offsets only grow, the earliest are kept
        return self._kept(sorted((*accumulator, (offset, value)), key=_offset))

    def _kept(self, pairs: list[tuple[int, Any]]) -> tuple[tuple[int, Any], ...]:
        return tuple(pairs[-self.keep :] if self.latest else pairs[: self.keep])

    def merge(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._kept(sorted((*a, *b), key=_offset))

    def result(self, accumulator: tuple[Any, ...]) -> Any:
        if self.count is None:
            return accumulator[0][1] if accumulator else None
        return [value for _, value in accumulator]


def _offset(pair: tuple[int, Any]) -> int:
    return pair[0]


class LatestByOffset(ByOffset):
    latest = True


def _float(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int) else value


class Moments(Aggregator):
    """STDDEV_SAMP, STDDEV_POP and VARIANCE from one (count, mean, M2) accumulator updated
    with Welford's method (ksqlDB's StandardDeviationSampleUdaf uses Youngs-Cramer, the
    same numbers). NULLs are ignored. With fewer than two values the result is 0.0, as
    ksqlDB's STDDEV_SAMPLE returns; STDDEV_POP and VARIANCE keep that rule."""

    def __init__(self, result_type: SqlType, kind: str) -> None:
        super().__init__(result_type)
        self.kind = kind

    def initialize(self) -> tuple[int, float, float]:
        return (0, 0.0, 0.0)

    def initial_source(self) -> str | None:
        return "(0, 0.0, 0.0)"

    def add(self, accumulator: tuple[int, float, float], value: Any, offset: int) -> Any:
        if value is None:
            return accumulator
        count, mean, m2 = accumulator
        x = _float(value)
        count += 1
        delta = x - mean
        mean += delta / count
        return (count, mean, m2 + delta * (x - mean))

    def merge(self, a: tuple[int, float, float], b: tuple[int, float, float]) -> Any:
        if a[0] == 0 or b[0] == 0:
            return b if a[0] == 0 else a
        count = a[0] + b[0]
        delta = b[1] - a[1]
        mean = a[1] + delta * b[0] / count
        return (count, mean, a[2] + b[2] + delta * delta * a[0] * b[0] / count)

    def result(self, accumulator: tuple[int, float, float]) -> float | None:
        count, _, m2 = accumulator
        if count < 2:
            return 0.0
        if self.kind == "STDDEV_POP":
            value = math.sqrt(max(m2, 0.0) / count)
        elif self.kind == "VARIANCE":
            value = max(m2, 0.0) / (count - 1)
        else:
            value = math.sqrt(max(m2, 0.0) / (count - 1))
        return value if math.isfinite(value) else None


class Correlation(Aggregator):
    """Pearson's correlation coefficient of (x, y) pairs (ksqlDB's CorrelationUdaf: the
    single-pass sums formula). A pair with a NULL is ignored. Where ksqlDB's division gives
    NaN (no pairs, or x or y constant), the result is NULL: NaN is never an output value."""

    def initialize(self) -> tuple[int, float, float, float, float, float]:
        return (0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def add(self, accumulator: tuple[Any, ...], value: Any, offset: int) -> tuple[Any, ...]:
        x, y = value if value is not None else (None, None)
        if x is None or y is None:
            return accumulator
        x, y = _float(x), _float(y)
        count, sx, sy, sxx, syy, sxy = accumulator
        return (count + 1, sx + x, sy + y, sxx + x * x, syy + y * y, sxy + x * y)

    def merge(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(left + right for left, right in zip(a, b, strict=True))

    def result(self, accumulator: tuple[Any, ...]) -> float | None:
        count, sx, sy, sxx, syy, sxy = accumulator
        numerator = count * sxy - sx * sy
        denominator = math.sqrt(max(count * sxx - sx * sx, 0.0) * max(count * syy - sy * sy, 0.0))
        if count == 0 or denominator == 0.0:
            return None
        value = numerator / denominator
        return value if math.isfinite(value) else None


class Attr(Aggregator):
    """The group's one value, or NULL when it saw more than one distinct value (ksqlDB's
    Attr; NULL counts as a value, so 1 and NULL are two). The accumulator is () before any
    value, (value,) while there is one, and (value, other) once there are two."""

    def initialize(self) -> tuple[Any, ...]:
        return ()

    def initial_source(self) -> str | None:
        return "()"

    def add(self, accumulator: tuple[Any, ...], value: Any, offset: int) -> tuple[Any, ...]:
        if not accumulator:
            return (value,)
        if len(accumulator) == 1 and accumulator[0] != value:
            return (accumulator[0], value)
        return accumulator

    def merge(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        merged = a
        for value in b:
            merged = self.add(merged, value, 0)
        return merged

    def result(self, accumulator: tuple[Any, ...]) -> Any:
        return accumulator[0] if len(accumulator) == 1 else None


def ksql_aggregator(call: AggregateCall) -> Aggregator | None:
    """The implementation of a ksqlDB aggregate call, or None for a core SQL aggregate."""
    name = call.function
    if name in ("TOPK", "TOPKDISTINCT"):
        ranking = TopKDistinct if name == "TOPKDISTINCT" else TopK
        return ranking(call.type, int(_constant(call, 1, 1)))
    if name in ("EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET"):
        second = _constant(call, 1, None)
        count = second if isinstance(second, int) and not isinstance(second, bool) else None
        ignore_nulls = bool(_constant(call, 2, True) if count is not None else second is not False)
        if count is None and ignore_nulls:
            return None  # the one-value form keeps the core aggregate (and its stored state)
        by_offset = LatestByOffset if name == "LATEST_BY_OFFSET" else ByOffset
        return by_offset(call.type, count, ignore_nulls)
    if name in ("STDDEV_SAMP", "STDDEV_POP", "VARIANCE"):
        return Moments(call.type, name)
    simple: dict[str, type[Aggregator]] = {
        "COUNT_DISTINCT": CountDistinct,
        "HISTOGRAM": Histogram,
        "CORRELATION": Correlation,
        "ATTR": Attr,
    }
    implementation = simple.get(name)
    return implementation(call.type) if implementation is not None else None


def row_arguments(call: AggregateCall) -> tuple[bound.Expr, ...]:
    """The arguments evaluated for every row: CORRELATION's two (folded as one (x, y)
    pair), otherwise the first; the rest are constants the aggregator read once."""
    return call.args[:2] if call.function == "CORRELATION" else call.args[:1]
