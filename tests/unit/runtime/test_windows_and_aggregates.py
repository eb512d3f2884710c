from __future__ import annotations

from decimal import Decimal

import pytest

from streamhouse_runtime.exec.aggregates import aggregator
from streamhouse_runtime.exec.windows import hopping, tumbling
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t

pytestmark = pytest.mark.unit


def test_tumbling_windows_are_epoch_aligned_and_half_open() -> None:
    assert tumbling(0, 300_000) == (0, 300_000)
    assert tumbling(299_999, 300_000) == (0, 300_000)
    assert tumbling(300_000, 300_000) == (300_000, 600_000)
    assert tumbling(-1, 1_000) == (-1_000, 0)  # before the epoch, still aligned


def test_hopping_windows_cover_every_window_holding_the_time() -> None:
    assert hopping(725_000, 600_000, 60_000) == [
        (start, start + 600_000) for start in range(180_000, 720_001, 60_000)
    ]
    assert len(hopping(10_000_000, 600_000, 60_000)) == 10
    assert all(s <= 10_000_000 < e for s, e in hopping(10_000_000, 600_000, 60_000))
    # The end is exclusive: a time equal to a window's end is not in that window.
    assert hopping(105, 30, 15) == [(90, 120), (105, 135)]


def test_hopping_windows_never_start_before_the_epoch() -> None:
    # Kafka Streams' TimeWindows.windowsFor: start = max(0, t - size + advance) rounded down.
    assert hopping(10_000, 30_000, 15_000) == [(0, 30_000)]
    assert hopping(125_000, 600_000, 60_000) == [
        (start, start + 600_000) for start in range(0, 120_001, 60_000)
    ]
    assert hopping(0, 30_000, 15_000) == [(0, 30_000)]
    assert hopping(15_000, 30_000, 15_000) == [(0, 30_000), (15_000, 45_000)]
    with pytest.raises(ValueError, match="before the epoch"):
        hopping(-1, 30_000, 15_000)


def _run(
    function: str, values: list[object], sql_type: t.SqlType, distinct: bool = False
) -> object:
    call = bound.AggregateCall(sql_type, function, (bound.ColumnRef(sql_type, "x"),), distinct)
    implementation = aggregator(call)
    accumulator = implementation.initialize()
    for offset, value in enumerate(values):
        accumulator = implementation.add(accumulator, value, offset)
    return implementation.result(accumulator)


def test_sql_aggregates_ignore_nulls() -> None:
    decimal = t.decimal(38, 2)
    assert _run("SUM", [Decimal("1.10"), None, Decimal("2.205")], decimal) == Decimal("3.31")
    assert _run("SUM", [None, None], decimal) is None
    assert _run("AVG", [1, 2, None, 4], t.DOUBLE) == pytest.approx(7 / 3)
    assert _run("AVG", [Decimal("1"), Decimal("2")], t.decimal(38, 6)) == Decimal("1.500000")
    assert _run("MIN", [3, None, 1, 2], t.INTEGER) == 1
    assert _run("MAX", ["a", "c", "b"], t.VARCHAR) == "c"
    assert _run("COUNT", [1, None, 3], t.BIGINT) == 2
    assert _run("COUNT", [1, 1, 2, None], t.BIGINT, distinct=True) == 2
    assert _run("COLLECT_LIST", ["a", None, "a"], t.array(t.VARCHAR)) == ["a", "a"]
    assert _run("COLLECT_SET", ["b", "a", "b"], t.array(t.VARCHAR)) == ["b", "a"]
    assert _run("EARLIEST_BY_OFFSET", [None, "x", "y"], t.VARCHAR) == "x"
    assert _run("LATEST_BY_OFFSET", ["x", "y", None], t.VARCHAR) == "y"


def test_count_star_counts_rows() -> None:
    call = bound.AggregateCall(t.BIGINT, "COUNT", ())
    implementation = aggregator(call)
    accumulator = implementation.initialize()
    for offset in range(5):
        accumulator = implementation.add(accumulator, None, offset)
    assert implementation.result(accumulator) == 5


def test_merging_session_accumulators() -> None:
    call = bound.AggregateCall(t.DOUBLE, "AVG", (bound.ColumnRef(t.DOUBLE, "x"),))
    implementation = aggregator(call)
    a = implementation.add(implementation.initialize(), 1.0, 0)
    b = implementation.add(implementation.add(implementation.initialize(), 2.0, 1), 6.0, 2)
    assert implementation.result(implementation.merge(a, b)) == 3.0


def test_generated_fold_matches_the_aggregators_own_add() -> None:
    import random

    from streamhouse_runtime.exec.aggregates import compile_fold

    calls = [
        bound.AggregateCall(t.BIGINT, "COUNT", ()),
        bound.AggregateCall(t.BIGINT, "COUNT", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.BIGINT, "SUM", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.DOUBLE, "AVG", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.INTEGER, "MIN", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.INTEGER, "MAX", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.array(t.INTEGER), "COLLECT_LIST", (bound.ColumnRef(t.INTEGER, "x"),)),
        bound.AggregateCall(t.INTEGER, "LATEST_BY_OFFSET", (bound.ColumnRef(t.INTEGER, "x"),)),
    ]
    implementations = [aggregator(call) for call in calls]
    arguments = [None] + [(lambda row: row["x"])] * (len(calls) - 1)
    fold = compile_fold(implementations, arguments)
    rng = random.Random(3)
    generated = [f.initialize() for f in implementations]
    reference = [f.initialize() for f in implementations]
    for offset in range(500):
        row = {"x": rng.choice([None, *range(-50, 50)])}
        fold(generated, row, offset)
        for index, (function, argument) in enumerate(zip(implementations, arguments, strict=True)):
            value = argument(row) if argument is not None else None
            reference[index] = function.add(reference[index], value, offset)
    assert [f.result(a) for f, a in zip(implementations, generated, strict=True)] == [
        f.result(a) for f, a in zip(implementations, reference, strict=True)
    ]


def test_generated_result_row_matches_the_aggregators_own_result() -> None:
    from streamhouse_runtime.exec.aggregates import compile_result_row

    x = bound.ColumnRef(t.decimal(10, 2), "x")
    calls = [
        bound.AggregateCall(t.BIGINT, "COUNT", ()),
        bound.AggregateCall(t.decimal(38, 2), "SUM", (x,)),
        bound.AggregateCall(t.decimal(38, 6), "AVG", (x,)),
        bound.AggregateCall(t.decimal(10, 2), "MIN", (x,)),
        bound.AggregateCall(t.array(t.decimal(10, 2)), "COLLECT_SET", (x,)),
    ]
    implementations = [aggregator(call) for call in calls]
    names = ["n", "total", "mean", "low", "seen"]
    accumulators = [f.initialize() for f in implementations]
    for offset, value in enumerate([Decimal("1.25"), None, Decimal("2.50"), Decimal("1.25")]):
        for index, function in enumerate(implementations):
            argument = None if index == 0 else value
            accumulators[index] = function.add(accumulators[index], argument, offset)
    result_row = compile_result_row(["customer", "region"], names, implementations)
    assert result_row(("c-1", None), accumulators) == {
        "customer": "c-1",
        "region": None,
        "n": 4,
        "total": Decimal("5.00"),
        "mean": Decimal("1.666667"),
        "low": Decimal("1.25"),
        "seen": [Decimal("1.25"), Decimal("2.50")],
    }
    assert list(result_row(("c-1", None), accumulators)) == ["customer", "region", *names]
    assert compile_result_row([], [], [])((), []) == {}


def test_generated_initialize_matches_the_aggregators_own_and_is_fresh_each_time() -> None:
    from streamhouse_runtime.exec.aggregates import compile_initialize

    x = bound.ColumnRef(t.INTEGER, "x")
    calls = [
        bound.AggregateCall(t.BIGINT, "COUNT", ()),
        bound.AggregateCall(t.BIGINT, "SUM", (x,)),
        bound.AggregateCall(t.DOUBLE, "AVG", (x,)),
        bound.AggregateCall(t.INTEGER, "MAX", (x,)),
        bound.AggregateCall(t.BIGINT, "COUNT", (x,), distinct=True),
        bound.AggregateCall(t.array(t.INTEGER), "COLLECT_LIST", (x,)),
    ]
    implementations = [aggregator(call) for call in calls]
    initialize = compile_initialize(implementations)
    first, second = initialize(), initialize()
    assert first == [f.initialize() for f in implementations]
    assert first == [0, None, [None, 0], None, set(), []]
    assert all(a is not b for a, b in zip(first[2:], second[2:], strict=True) if a is not None)
    assert compile_initialize([])() == []


def test_decimal_38_sums_and_averages_are_exact_beyond_28_digits() -> None:
    """Python's default decimal context keeps 28 digits; DECIMAL(38, 2) sums need 38."""
    from streamhouse_runtime.exec.aggregates import compile_fold

    big = Decimal("123456789012345678901234567890123.45")  # 35 digits
    x = bound.ColumnRef(t.decimal(38, 2), "x")
    calls = [
        bound.AggregateCall(t.decimal(38, 2), "SUM", (x,)),
        bound.AggregateCall(t.decimal(38, 2), "AVG", (x,)),
    ]
    implementations = [aggregator(call) for call in calls]
    fold = compile_fold(implementations, [lambda row: row["x"]] * 2)
    generated = [f.initialize() for f in implementations]
    reference = [f.initialize() for f in implementations]
    for offset, value in enumerate([big, Decimal("0.01"), big]):
        fold(generated, {"x": value}, offset)
        reference = [
            f.add(a, value, offset) for f, a in zip(implementations, reference, strict=True)
        ]
    total = Decimal("246913578024691357802469135780246.91")
    average = Decimal("82304526008230452600823045260082.30")  # 246...246.91 / 3, half-up
    for accumulators in (generated, reference):
        results = [f.result(a) for f, a in zip(implementations, accumulators, strict=True)]
        assert results == [total, average]
    merged = implementations[0].merge(reference[0], reference[0])
    assert implementations[0].result(merged) == Decimal("493827156049382715604938271560493.82")
