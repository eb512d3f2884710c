"""ksqlDB's aggregate library (TOPK, HISTOGRAM, STDDEV_SAMP, CORRELATION, ATTR, ...) from SQL
through the planner into the running and windowed aggregate operators.

Expected values follow ksqlDB's implementations (ksqldb-engine `function/udaf/`): TopkKudaf
and TopkDistinctKudaf return fewer than k values when fewer arrived; HistogramUdaf counts at
most 1000 distinct strings; StandardDeviationSampleUdaf returns 0.0 below two values;
CorrelationUdaf skips a pair with a NULL; Attr treats NULL as a value; EarliestByOffset and
LatestByOffset ignore NULLs unless ignoreNulls is FALSE.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from streamhouse_runtime.exec.ksql_aggregates import HISTOGRAM_LIMIT
from streamhouse_runtime.exec.pipeline import aggregate_arguments
from streamhouse_runtime.exec.stateful import AggregateOperator, WindowAggregateOperator
from streamhouse_runtime.plan.nodes import Aggregate, PlanNode, WindowAggregate
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.state.backend import MemoryStateBackend, RocksdbStateBackend, StateBackend
from streamhouse_runtime.testing.runner import OfflineRun

pytestmark = pytest.mark.unit

DDL = (
    "CREATE STREAM s (k VARCHAR, v BIGINT, w DOUBLE, d DECIMAL(10,2), name VARCHAR, "
    "ts TIMESTAMP) WITH (kafka_topic='s', timestamp='ts');\n"
)
MINUTE = 60_000
Row = dict[str, object]


def _node(query: str, kind: type[PlanNode]) -> PlanNode:
    plan = plan_statement(analyze(DDL + query).persistent_queries[0])
    node: PlanNode | None = plan
    while node is not None and not isinstance(node, kind):
        node = node.children()[0] if node.children() else None
    assert node is not None
    return node


def _running(select: str, backend: StateBackend | None = None) -> AggregateOperator:
    node = _node(f"CREATE TABLE out AS SELECT k, {select} FROM s GROUP BY k", Aggregate)
    assert isinstance(node, Aggregate)
    return AggregateOperator(
        node,
        lambda row: (row["k"],),
        aggregate_arguments(node.aggregates, None),
        backend or MemoryStateBackend(),
        "agg",
        100,
    )


def _fold(select: str, rows: list[Row]) -> object:
    """The running aggregate's value after every row (each row's missing columns are NULL)."""
    op = _running(f"{select} AS r")
    result: object = "no rows"
    for offset, row in enumerate(rows):
        emitted = op.process({"k": "a", **row}, 0, offset, 0).row
        assert emitted is not None
        result = emitted["_a_0"]
    return result


def _values(column: str, values: Sequence[object]) -> list[Row]:
    return [{column: value} for value in values]


CASES: list[tuple[str, list[Row], object]] = [
    # TOPK: largest first, duplicates kept, fewer than k values -> a shorter array.
    ("TOPK(v, 3)", _values("v", [4, 1, 9, None, 4, 7]), [9, 7, 4]),
    ("TOPK(v, 3)", _values("v", [5, 5, 5, 5]), [5, 5, 5]),
    ("TOPK(v, 5)", _values("v", [2, None, 1]), [2, 1]),
    ("TOPK(v, 2)", _values("v", [None, None]), []),
    ("TOPK(name, 2)", _values("name", ["b", "c", "a"]), ["c", "b"]),
    (
        "TOPK(d, 2)",
        _values("d", [Decimal("1.50"), Decimal("-3.00")]),
        [Decimal("1.50"), Decimal("-3.00")],
    ),
    # TOPKDISTINCT: each value once.
    ("TOPKDISTINCT(v, 3)", _values("v", [5, 5, 3, 5, 3, 1, 0]), [5, 3, 1]),
    ("TOPKDISTINCT(v, 3)", _values("v", [None, 2, 2]), [2]),
    # HISTOGRAM: counts per distinct string; NULL is not a key (ksqlDB's HistogramUdafTest
    # counts it under a NULL key, which no output format writes; a documented difference).
    ("HISTOGRAM(name)", _values("name", ["x", "y", "x", None]), {"x": 2, "y": 1}),
    ("HISTOGRAM(name)", _values("name", [None]), {}),
    # COUNT_DISTINCT: distinct non-NULL values (exact).
    ("COUNT_DISTINCT(name)", _values("name", ["x", "y", "x", None]), 2),
    ("COUNT_DISTINCT(v)", _values("v", [None]), 0),
    # STDDEV_SAMP (= STDDEV_SAMPLE), STDDEV_POP, VARIANCE; below two values 0.0.
    (
        "STDDEV_SAMP(v)",
        _values("v", [2, 4, 4, 4, 5, 5, 7, 9]),
        statistics.stdev([2, 4, 4, 4, 5, 5, 7, 9]),
    ),
    ("STDDEV_SAMPLE(v)", _values("v", [1, None, 3]), statistics.stdev([1, 3])),
    ("STDDEV_SAMP(v)", _values("v", [7]), 0.0),
    ("STDDEV_SAMP(v)", _values("v", [None]), 0.0),
    ("STDDEV_POP(v)", _values("v", [2, 4, 4, 4, 5, 5, 7, 9]), 2.0),
    ("STDDEV_POP(w)", _values("w", [1.5, None]), 0.0),
    ("VARIANCE(d)", _values("d", [Decimal("1.00"), Decimal("2.00"), Decimal("3.00")]), 1.0),
    ("VARIANCE(v)", _values("v", [3]), 0.0),
    # CORRELATION: Pearson's r; a pair with a NULL is skipped; undefined is NULL.
    (
        "CORRELATION(v, w)",
        [{"v": 1, "w": 2.0}, {"v": 2, "w": 4.0}, {"v": 3, "w": 6.5}],
        statistics.correlation([1, 2, 3], [2.0, 4.0, 6.5]),
    ),
    ("CORRELATION(v, w)", [{"v": 1, "w": 3.0}, {"v": 2, "w": 1.0}, {"v": None, "w": 9.0}], -1.0),
    ("CORRELATION(v, w)", [{"v": 1, "w": None}, {"v": None, "w": 2.0}], None),
    ("CORRELATION(v, w)", [{"v": 1, "w": 5.0}, {"v": 2, "w": 5.0}], None),  # w constant
    # EARLIEST / LATEST_BY_OFFSET with n and ignoreNulls.
    ("EARLIEST_BY_OFFSET(v, 2)", _values("v", [None, 4, 5, 6]), [4, 5]),
    ("EARLIEST_BY_OFFSET(v, 2, false)", _values("v", [None, 4, 5]), [None, 4]),
    ("EARLIEST_BY_OFFSET(v, 3)", _values("v", [8]), [8]),
    ("EARLIEST_BY_OFFSET(v, false)", _values("v", [None, 4]), None),
    ("EARLIEST_BY_OFFSET(v, true)", _values("v", [None, 4]), 4),
    ("LATEST_BY_OFFSET(v, 2)", _values("v", [1, 2, 3, None]), [2, 3]),
    ("LATEST_BY_OFFSET(v, 2, false)", _values("v", [1, 2, None]), [2, None]),
    ("LATEST_BY_OFFSET(v, false)", _values("v", [1, None]), None),
    ("LATEST_BY_OFFSET(v, 2)", _values("v", [None]), []),
    # ATTR: the one value, else NULL (NULL counts as a value).
    ("ATTR(name)", _values("name", ["x", "x"]), "x"),
    ("ATTR(name)", _values("name", ["x", "y", "x"]), None),
    ("ATTR(name)", _values("name", ["x", None]), None),
    ("ATTR(name)", _values("name", [None, None]), None),
]


@pytest.mark.parametrize(("select", "rows", "expected"), CASES)
def test_ksql_aggregate_values_and_null_rules(
    select: str, rows: list[Row], expected: object
) -> None:
    actual = _fold(select, rows)
    if isinstance(expected, float):
        assert isinstance(actual, float) and math.isclose(actual, expected, rel_tol=1e-12)
    else:
        assert actual == expected


def test_histogram_counts_at_most_a_thousand_distinct_values() -> None:
    rows = _values("name", [f"n{i}" for i in range(HISTOGRAM_LIMIT + 5)] + ["n0", "late"])
    histogram = _fold("HISTOGRAM(name)", rows)
    assert isinstance(histogram, dict)
    assert len(histogram) == HISTOGRAM_LIMIT
    assert histogram["n0"] == 2 and "late" not in histogram


def test_aggregate_state_survives_a_checkpoint_and_a_restart(tmp_path: Path) -> None:
    select = (
        "TOPK(v, 2) AS t, TOPKDISTINCT(v, 2) AS td, HISTOGRAM(name) AS h, STDDEV_SAMP(v) AS sd, "
        "CORRELATION(v, w) AS c, COUNT_DISTINCT(name) AS cd, EARLIEST_BY_OFFSET(v, 2) AS e, "
        "LATEST_BY_OFFSET(v, 2, false) AS l, ATTR(name) AS a, VARIANCE(v) AS var"
    )
    rows: list[Row] = [
        {"k": "a", "v": v, "w": w, "name": "x"}
        for v, w in [(3, 1.0), (9, 2.0), (3, 2.5), (1, 4.0), (7, 4.5)]
    ]
    backend = RocksdbStateBackend(tmp_path / "db")
    first = _running(select, backend)
    for offset, row in enumerate(rows[:3]):
        first.process(row, 0, offset, 0)
    backend.commit({"agg": first.changes()}, {("s", 0): 3})

    restarted = _running(select, backend)  # a new pod on the same volume
    for offset, row in enumerate(rows[3:], 3):
        after_restart = restarted.process(row, 0, offset, 0).row
    uninterrupted = _running(select)
    for offset, row in enumerate(rows):
        expected = uninterrupted.process(row, 0, offset, 0).row
    assert after_restart == expected
    assert after_restart is not None and after_restart["_a_0"] == [9, 7]
    assert after_restart["_a_6"] == [3, 9] and after_restart["_a_7"] == [1, 7]
    backend.close()


def test_a_record_failing_part_way_leaves_every_accumulator_as_it_was() -> None:
    # The SUM overflows on the second record, after TOPK, HISTOGRAM and the others folded
    # nothing yet (checks run before applies): none of them may show the failed record.
    big = (1 << 63) - 1
    op = _running(
        "TOPK(v, 2) AS t, HISTOGRAM(name) AS h, STDDEV_POP(v) AS sp, SUM(v) AS total, "
        "LATEST_BY_OFFSET(v, 2) AS l, ATTR(name) AS a"
    )
    first = op.process({"k": "a", "v": big, "name": "x"}, 0, 0, 0).row
    op.undo.clear()
    with pytest.raises(ArithmeticError):
        op.process({"k": "a", "v": 5, "name": "y"}, 0, 1, 0)
    op.undo.clear()  # not rolled back: the failed fold itself must have changed nothing
    again = op.process({"k": "a", "v": 0, "name": "x"}, 0, 2, 0).row
    assert first is not None and again is not None
    assert again["_a_0"] == [big, 0]
    assert again["_a_1"] == {"x": 2}
    assert again["_a_4"] == [big, 0]
    assert again["_a_5"] == "x"


def _window(query: str, backend: StateBackend) -> WindowAggregateOperator:
    node = _node(query, WindowAggregate)
    assert isinstance(node, WindowAggregate)
    return WindowAggregateOperator(
        node,
        lambda row: (row["k"],),
        aggregate_arguments(node.aggregates, None),
        lambda row: row["ts"],  # type: ignore[arg-type,return-value]
        backend,
        "w",
        100,
    )


WINDOWED = (
    "CREATE STREAM out AS SELECT k, TOPK(v, 2) AS t, HISTOGRAM(name) AS h, "
    "STDDEV_POP(v) AS sp, CORRELATION(v, w) AS c, EARLIEST_BY_OFFSET(v, 2) AS e, "
    "ATTR(name) AS a FROM s GROUP BY k, {window}"
)


@pytest.mark.parametrize(
    "window",
    [
        "TUMBLE(ts, INTERVAL '1' MINUTE)",
        "HOP(ts, INTERVAL '1' MINUTE, INTERVAL '1' MINUTE)",
        "SESSION(ts, INTERVAL '10' MINUTE)",
    ],
)
def test_windowed_aggregates_fold_restore_and_merge(tmp_path: Path, window: str) -> None:
    backend = RocksdbStateBackend(tmp_path / "db")
    query = WINDOWED.format(window=window)
    first = _window(query, backend)
    first.process({"k": "a", "v": 4, "w": 1.0, "name": "x", "ts": 1_000}, 0, 0, -1)
    first.process({"k": "a", "v": 2, "w": 2.0, "name": "x", "ts": 40_000}, 0, 1, -1)
    backend.commit({"w": first.changes()}, {("s", 0): 2})
    second = _window(query, backend)  # restarted: the window's state comes from the store
    second.process({"k": "a", "v": 6, "w": 3.0, "name": "x", "ts": 20_000}, 0, 2, -1)
    closed = [e.row for e in second.close(0, 100 * MINUTE) if e.row]
    assert len(closed) == 1
    row = closed[0]
    assert row["_a_0"] == [6, 4]
    assert row["_a_1"] == {"x": 3}
    assert math.isclose(row["_a_2"], statistics.pstdev([4, 2, 6]))  # type: ignore[arg-type]
    assert math.isclose(row["_a_3"], 0.5)  # type: ignore[arg-type]
    assert row["_a_4"] == [4, 2]
    assert row["_a_5"] == "x"
    backend.close()


def test_session_windows_merge_the_new_accumulators() -> None:
    query = WINDOWED.format(window="SESSION(ts, INTERVAL '10' MINUTE)")
    op = _window(query, MemoryStateBackend())
    op.process({"k": "a", "v": 1, "w": 1.0, "name": "x", "ts": 0}, 0, 0, -1)
    op.process({"k": "a", "v": 9, "w": 3.0, "name": "y", "ts": 15 * MINUTE}, 0, 1, -1)
    op.process({"k": "a", "v": 5, "w": 2.0, "name": "x", "ts": 8 * MINUTE}, 0, 2, -1)  # bridges
    closed = [e.row for e in op.close(0, 100 * MINUTE) if e.row]
    assert len(closed) == 1
    row = closed[0]
    assert row["_a_0"] == [9, 5]
    assert row["_a_1"] == {"x": 2, "y": 1}
    assert math.isclose(row["_a_2"], statistics.pstdev([1, 9, 5]))  # type: ignore[arg-type]
    assert math.isclose(row["_a_3"], 1.0)  # type: ignore[arg-type]
    assert row["_a_4"] == [1, 9]
    assert row["_a_5"] is None  # x and y


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("STDDEV_SAMPLE(v)", "STDDEV_SAMP"),
        ("VAR_SAMP(v)", "VARIANCE"),
        ("CORR(v, w)", "CORRELATION"),
    ],
)
def test_aliases_bind_to_the_same_aggregate(alias: str, name: str) -> None:
    node = _node(f"CREATE TABLE out AS SELECT k, {alias} AS r FROM s GROUP BY k", Aggregate)
    assert isinstance(node, Aggregate)
    assert [call.function for _, call in node.aggregates] == [name]


def test_the_offline_runner_serializes_the_new_aggregates_and_constructors() -> None:
    # Through the same stage executors the pods run: argument compilation, JSON output.
    query = (
        "CREATE TABLE t WITH (kafka_topic = 'out') AS SELECT k, TOPK(v, 2) AS top2, "
        "HISTOGRAM(name) AS h, CORRELATION(v, w) AS c, LATEST_BY_OFFSET(v, 2) AS last2, "
        "STRUCT(n := COUNT(*), a := ARRAY[MIN(v), MAX(v)]) AS st FROM s GROUP BY k "
        "HAVING STDDEV_POP(v) > 0;"
    )
    run = OfflineRun(analyze(DDL + query))
    rows = [(1, 1.0, "x"), (3, 2.0, "y"), (2, 3.0, "x")]
    run.feed(
        [
            {
                "topic": "s",
                "key": "a",
                "value": {"k": "a", "v": v, "w": w, "name": n, "ts": i},
                "timestamp": i,
            }
            for i, (v, w, n) in enumerate(rows)
        ]
    )
    run.run()
    values = [o["value"] for o in run.outputs() if o["topic"] == "out"]
    assert values[-1] == {
        "k": "a",
        "top2": [3, 2],
        "h": {"x": 2, "y": 1},
        "c": pytest.approx(0.5),
        "last2": [3, 2],
        "st": {"n": 3, "a": [1, 3]},
    }
    assert len(values) == 2  # the first record's group has a 0.0 deviation: HAVING drops it


def test_lambdas_over_aggregate_results_and_in_where() -> None:
    query = (
        "CREATE TABLE t WITH (kafka_topic = 'out') AS SELECT k, "
        "TRANSFORM(TOPK(v, 3), x => x * 10) AS scaled, "
        "REDUCE(COLLECT_LIST(v), 0, (s, x) => s + x) AS total, "
        "TRANSFORM(COLLECT_LIST(v), x => CONCAT(k, ':', CAST(x * COUNT(*) AS VARCHAR))) AS tagged "
        "FROM s WHERE CARDINALITY(FILTER(ARRAY[v, w], x => x > 0)) = 2 GROUP BY k;"
    )
    run = OfflineRun(analyze(DDL + query))
    rows = [(1, 1.0), (5, -1.0), (3, 2.0), (2, 0.5)]  # the second fails the WHERE
    run.feed(
        [
            {"topic": "s", "key": "a", "value": {"k": "a", "v": v, "w": w, "ts": i}, "timestamp": i}
            for i, (v, w) in enumerate(rows)
        ]
    )
    run.run()
    values = [o["value"] for o in run.outputs() if o["topic"] == "out"]
    assert values[-1] == {
        "k": "a",
        "scaled": [30, 20, 10],
        "total": 6,
        "tagged": ["a:3", "a:9", "a:6"],  # the group key and an aggregate inside the lambda
    }
    assert len(values) == 3
