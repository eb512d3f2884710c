"""Pull reads of a TABLE's rows from committed state: equal to a reference computed over the
input, HAVING applied, paging by continuation token, key lookups, window ranges, and only
the partitions the pod owns."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamhouse_runtime.exec.pipeline import MemoryRecord, StageExecutor, StageSettings
from streamhouse_runtime.exec.results import MAX_LIMIT, NotATable, ResultRow, TableReader
from streamhouse_runtime.exec.topology import split_stages
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.state.backend import MemoryStateBackend, RocksdbStateBackend, StateBackend
from streamhouse_runtime.testing.runner import MemoryTopics

pytestmark = pytest.mark.unit

DDL = (
    "CREATE STREAM s (k VARCHAR KEY, v BIGINT, ts BIGINT) "
    "WITH (kafka_topic='s', value_format='JSON', timestamp='ts');\n"
)
RUNNING = (
    "CREATE TABLE totals AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM s "
    "GROUP BY k HAVING COUNT(*) > 1;"
)
WINDOWED = (
    "CREATE TABLE per_minute AS SELECT k, COUNT(*) AS n FROM s "
    "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES;"
)
MINUTE = 60_000
PARTITIONS = 4


def _executor(query: str, backend: StateBackend) -> StageExecutor:
    plan = plan_statement(analyze(DDL + query).persistent_queries[0])
    assert isinstance(plan, Sink)
    (spec,) = split_stages(plan)
    return StageExecutor(spec, StageSettings(query_id="q", dead_letter_topic="dlq"), backend)


def _feed(executor: StageExecutor, backend: StateBackend, rows: list[tuple[str, int, int]]) -> None:
    """Rows go to partition hash(k) % PARTITIONS, as the source's producer would place them."""
    records = [
        MemoryRecord(
            "s", sum(k.encode()) % PARTITIONS, offset, ts, k.encode(),
            json.dumps({"v": v, "ts": ts}).encode(), None,
        )
        for offset, (k, v, ts) in enumerate(rows)
    ]  # fmt: skip
    executor.process(records, MemoryTopics())
    backend.commit(executor.changes(), {})


def _rows() -> list[tuple[str, int, int]]:
    return [(f"key-{i % 23}", i, (i % 3) * MINUTE + i) for i in range(500)]


def _all_pages(reader: TableReader, limit: int, **where: Any) -> list[ResultRow]:
    rows: list[ResultRow] = []
    token: str | None = None
    for _ in range(1000):
        page = reader.read(limit=limit, after=token, **where)
        assert len(page.rows) <= limit
        rows.extend(page.rows)
        token = page.next_token
        if token is None:
            return rows
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("backend_kind", ["memory", "rocksdb"])
def test_running_aggregate_rows_equal_a_reference(backend_kind: str, tmp_path: Path) -> None:
    backend: StateBackend = (
        MemoryStateBackend() if backend_kind == "memory" else RocksdbStateBackend(tmp_path / "db")
    )
    executor = _executor(RUNNING, backend)
    rows = [*_rows(), ("lonely", 7, 0)]  # one row only: HAVING COUNT(*) > 1 drops it
    _feed(executor, backend, rows)
    reference: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "total": 0})
    for k, v, _ in rows:
        reference[k]["n"] += 1
        reference[k]["total"] += v
    expected = {k: {"k": k, **r} for k, r in reference.items() if r["n"] > 1}
    reader = TableReader(executor, backend, lambda: range(PARTITIONS))
    for limit in (1, 5, 100):
        got = _all_pages(reader, limit)
        assert {row.key[0]: row.row for row in got} == expected
        assert len(got) == len(expected)
    assert reader.read(key=("key-3",)).rows[0].row == expected["key-3"]
    assert reader.read(key=("lonely",)).rows == []
    assert reader.read(key=("absent",)).rows == []
    # A pod answers for the partitions it owns, and only for those.
    owned = TableReader(executor, backend, lambda: [1, 3])
    got_owned = _all_pages(owned, 7)
    assert {r.key[0] for r in got_owned} == {
        k for k in expected if sum(k.encode()) % PARTITIONS in (1, 3)
    }
    outside = next(k for k in expected if sum(k.encode()) % PARTITIONS not in (1, 3))
    assert owned.read(key=(outside,)).rows == []
    backend.close()


def test_uncommitted_changes_are_not_read() -> None:
    backend = MemoryStateBackend()
    executor = _executor(RUNNING, backend)
    _feed(executor, backend, [("a", 1, 0), ("a", 2, 1)])
    reader = TableReader(executor, backend, lambda: range(PARTITIONS))
    executor.process(
        [MemoryRecord("s", sum(b"a") % 4, 9, 2, b"a", b'{"v": 10, "ts": 2}', None)], MemoryTopics()
    )
    assert reader.read(key=("a",)).rows[0].row == {"k": "a", "n": 2, "total": 3}
    backend.commit(executor.changes(), {})
    assert reader.read(key=("a",)).rows[0].row == {"k": "a", "n": 3, "total": 13}


def test_windowed_rows_by_key_and_window_range() -> None:
    backend = MemoryStateBackend()
    executor = _executor(WINDOWED, backend)
    rows = _rows()
    _feed(executor, backend, rows)
    reference: dict[tuple[str, int], int] = defaultdict(int)
    for k, _, ts in rows:
        reference[(k, ts - ts % MINUTE)] += 1
    reader = TableReader(executor, backend, lambda: range(PARTITIONS))
    got = _all_pages(reader, 10)
    assert {(r.key[0], r.window[0]): r.row["n"] for r in got if r.window} == reference
    assert all(r.window is not None and r.window[1] == r.window[0] + MINUTE for r in got)
    second = _all_pages(reader, 3, window_start_from=MINUTE, window_start_to=2 * MINUTE)
    assert {(r.key[0], r.window[0]) for r in second if r.window} == {
        w for w in reference if w[1] == MINUTE
    }
    one_key = _all_pages(reader, 2, key=("key-5",))
    assert {r.window[0]: r.row["n"] for r in one_key if r.window} == {
        start: n for (k, start), n in reference.items() if k == "key-5"
    }


def test_pages_are_bounded_and_streams_have_no_table() -> None:
    backend = MemoryStateBackend()
    executor = _executor(RUNNING, backend)
    _feed(executor, backend, [(f"k{i}", 1, 0) for i in range(MAX_LIMIT + 50) for _ in range(2)])
    reader = TableReader(executor, backend, lambda: range(PARTITIONS))
    page = reader.read(limit=10 * MAX_LIMIT)
    assert len(page.rows) == MAX_LIMIT and page.next_token is not None
    with pytest.raises(NotATable):
        TableReader(
            _executor("CREATE STREAM big AS SELECT * FROM s WHERE v > 1;", backend),
            backend,
            lambda: [0],
        )
