"""Window and running aggregates over plain rows, with state round trips through a backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamhouse_runtime.exec.stateful import (
    AggregateOperator,
    LateRecord,
    WindowAggregateOperator,
)
from streamhouse_runtime.plan.nodes import Aggregate, PlanNode, WindowAggregate
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.state.backend import MemoryStateBackend, RocksdbStateBackend, StateBackend

pytestmark = pytest.mark.unit

DDL = (
    "CREATE STREAM s (k VARCHAR, v BIGINT, ts TIMESTAMP) WITH (kafka_topic='s', timestamp='ts');\n"
)
MINUTE = 60_000


def _node(query: str, kind: type[PlanNode]) -> PlanNode:
    plan = plan_statement(analyze(DDL + query).persistent_queries[0])
    node: PlanNode | None = plan
    while node is not None and not isinstance(node, kind):
        node = node.children()[0] if node.children() else None
    assert node is not None
    return node


def _window_op(query: str, backend: StateBackend, cache: int = 1000) -> WindowAggregateOperator:
    node = _node(query, WindowAggregate)
    assert isinstance(node, WindowAggregate)
    return WindowAggregateOperator(
        node,
        lambda row: (row["k"],),
        [None if not call.args else (lambda row: row["v"]) for _, call in node.aggregates],
        lambda row: row["ts"],  # type: ignore[arg-type,return-value]
        backend,
        "w",
        cache,
    )


TUMBLE = (
    "CREATE STREAM out AS SELECT k, TUMBLE_START(ts, INTERVAL '1' MINUTE) AS ws, "
    "COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE)"
)


def test_tumbling_final_emits_each_window_once_when_it_closes() -> None:
    op = _window_op(TUMBLE, MemoryStateBackend())
    for offset, (k, v, ts) in enumerate(
        [("a", 1, 1_000), ("a", 2, 59_000), ("b", 5, 30_000), ("a", 4, 61_000)]
    ):
        assert op.process({"k": k, "v": v, "ts": ts}, 0, offset, -1) == []
    assert op.close(0, 59_999) == []
    closed = op.close(0, 60_000)
    assert [(e.key, e.row["_a_0"], e.row["_a_1"], e.window) for e in closed if e.row] == [
        (("a",), 2, 3, (0, 60_000)),
        (("b",), 1, 5, (0, 60_000)),
    ]
    assert op.close(0, 60_000) == []  # closed windows are gone
    with pytest.raises(LateRecord):
        op.process({"k": "a", "v": 1, "ts": 10_000}, 0, 9, 60_000)
    assert op.late_records == 1


def test_emit_changes_emits_every_update() -> None:
    query = TUMBLE.replace(
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE)",
        "GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE) EMIT CHANGES",
    )
    op = _window_op(query, MemoryStateBackend())
    counts = [op.process({"k": "a", "v": 1, "ts": 1_000 * i}, 0, i, -1)[0].row["_a_0"]
              for i in range(1, 4)]  # fmt: skip
    assert counts == [1, 2, 3]
    assert op.close(0, MINUTE) == []  # CHANGES already emitted everything


def test_hopping_windows_each_get_the_record() -> None:
    query = (
        "CREATE STREAM out AS SELECT k, COUNT(*) AS n FROM s "
        "GROUP BY k, HOP(ts, INTERVAL '1' MINUTE, INTERVAL '3' MINUTE)"
    )
    op = _window_op(query, MemoryStateBackend())
    op.process({"k": "a", "v": 1, "ts": 2 * MINUTE + 5}, 0, 0, -1)
    closed = op.close(0, 10 * MINUTE)
    assert [e.window for e in closed] == [
        (0, 3 * MINUTE),
        (MINUTE, 4 * MINUTE),
        (2 * MINUTE, 5 * MINUTE),
    ]


def test_sessions_merge_when_a_record_bridges_them() -> None:
    query = (
        "CREATE STREAM out AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM s "
        "GROUP BY k, SESSION(ts, INTERVAL '10' MINUTE)"
    )
    op = _window_op(query, MemoryStateBackend())
    op.process({"k": "a", "v": 1, "ts": 0}, 0, 0, -1)
    op.process({"k": "a", "v": 2, "ts": 15 * MINUTE}, 0, 1, -1)  # a second session
    op.process({"k": "a", "v": 4, "ts": 8 * MINUTE}, 0, 2, -1)  # bridges both
    closed = op.close(0, 100 * MINUTE)
    assert [(e.row["_a_0"], e.row["_a_1"], e.window) for e in closed if e.row] == [
        (3, 7, (0, 25 * MINUTE)),
    ]


@pytest.mark.parametrize("cache", [1000, 2])
def test_window_state_survives_a_checkpoint_and_a_new_operator(tmp_path: Path, cache: int) -> None:
    backend = RocksdbStateBackend(tmp_path / "db")
    first = _window_op(TUMBLE, backend, cache)
    for offset in range(6):
        first.process({"k": f"k{offset % 3}", "v": offset, "ts": 1_000}, 0, offset, -1)
    backend.commit({"w": first.changes()}, {("s", 0): 6})

    second = _window_op(TUMBLE, backend, cache)  # a restarted pod reading the same volume
    second.process({"k": "k0", "v": 100, "ts": 2_000}, 0, 6, -1)
    closed = second.close(0, MINUTE)
    assert {e.key: (e.row["_a_0"], e.row["_a_1"]) for e in closed if e.row} == {
        ("k0",): (3, 0 + 3 + 100),
        ("k1",): (2, 1 + 4),
        ("k2",): (2, 2 + 5),
    }
    backend.commit({"w": second.changes()}, {("s", 0): 7})
    assert list(backend.scan("w")) == []  # closed windows are deleted from the store
    backend.close()


def test_running_aggregate_upserts_and_restores() -> None:
    query = "CREATE TABLE out AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY k"
    node = _node(query, Aggregate)
    assert isinstance(node, Aggregate)
    backend = MemoryStateBackend()

    def make() -> AggregateOperator:
        assert isinstance(node, Aggregate)
        return AggregateOperator(
            node, lambda row: (row["k"],), [None, lambda row: row["v"]], backend, "agg", 10
        )

    op = make()
    rows = [op.process({"k": "a", "v": v}, 0, v, 0).row for v in (1, 2, 3)]
    assert [(r["_a_0"], r["_a_1"]) for r in rows if r] == [(1, 1), (2, 3), (3, 6)]
    backend.commit({"agg": op.changes()}, {})
    restored = make().process({"k": "a", "v": 10}, 0, 4, 0).row
    assert restored is not None and (restored["_a_0"], restored["_a_1"]) == (4, 16)
