"""Runtime semantics through the offline runner (the same stage executors the pods run):
HAVING with tombstones, DISTINCT, PARTITION BY, and the ksqlDB and Flink TVF window syntaxes."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.testing.runner import OfflineRun

pytestmark = pytest.mark.unit

DDL = (
    "CREATE STREAM s (k VARCHAR, v BIGINT, ts TIMESTAMP) "
    "WITH (kafka_topic = 's', value_format = 'JSON', timestamp = 'ts');\n"
)
MINUTE = 60_000


def _run(query: str, rows: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    run = OfflineRun(analyze(DDL + query))
    run.feed(
        [
            {"topic": "s", "key": k, "value": {"k": k, "v": v, "ts": ts}, "timestamp": ts}
            for k, v, ts in rows
        ]
    )
    run.run()
    return [o for o in run.outputs() if o["topic"] == "out"]


def test_having_emits_a_tombstone_when_a_group_stops_qualifying() -> None:
    query = (
        "CREATE TABLE t WITH (kafka_topic = 'out') AS SELECT k, SUM(v) AS total FROM s "
        "GROUP BY k HAVING SUM(v) > 5;"
    )
    outputs = _run(query, [("a", 3, 1), ("a", 4, 2), ("a", -10, 3), ("a", 1, 4)])
    assert [o["value"] for o in outputs] == [{"k": "a", "total": 7}, None]


def test_distinct_emits_each_row_once() -> None:
    query = "CREATE STREAM d WITH (kafka_topic = 'out') AS SELECT DISTINCT k FROM s;"
    outputs = _run(query, [("a", 1, 1), ("b", 1, 2), ("a", 2, 3), ("b", 3, 4), ("c", 0, 5)])
    assert [o["value"]["k"] for o in outputs] == ["a", "b", "c"]


def test_partition_by_rekeys_the_output() -> None:
    query = "CREATE STREAM r WITH (kafka_topic = 'out') AS SELECT k, v FROM s PARTITION BY v;"
    run = OfflineRun(analyze(DDL + query))
    run.feed([{"topic": "s", "key": "x", "value": {"k": "a", "v": 42, "ts": 1}, "timestamp": 1}])
    run.run()
    (record,) = run.topics["out"]
    assert struct.unpack(">q", record.key or b"") == (42,)  # KAFKA key format: 8-byte BIGINT
    assert json.loads(record.value or b"null") == {"k": "a", "v": 42}


def test_ksqldb_tumbling_window_emits_changes_with_windowed_keys() -> None:
    query = (
        "CREATE TABLE w WITH (kafka_topic = 'out') AS SELECT k, COUNT(*) AS n, "
        "WINDOWSTART AS ws FROM s WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k;"
    )
    run = OfflineRun(analyze(DDL + query))
    run.feed(
        [
            {"topic": "s", "key": "a", "value": {"k": "a", "v": 1, "ts": t}, "timestamp": t}
            for t in (1_000, 2_000, MINUTE + 1)
        ]
    )
    run.run()
    records = run.topics["out"]
    assert [json.loads(r.value or b"null")["n"] for r in records] == [1, 2, 1]
    starts = [struct.unpack(">q", (r.key or b"")[-8:])[0] for r in records]
    assert starts == [0, 0, MINUTE]  # the window start is part of the key (EMIT CHANGES)


def test_flink_window_table_function_emits_final_results() -> None:
    query = (
        "CREATE STREAM f WITH (kafka_topic = 'out') AS SELECT window_start, window_end, "
        "SUM(v) AS total FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) "
        "GROUP BY window_start, window_end;"
    )
    outputs = _run(query, [("a", 1, 1_000), ("b", 2, 30_000), ("a", 5, MINUTE + 5)])
    assert [(o["value"]["window_start"], o["value"]["total"]) for o in outputs] == [
        (0, 3),
        (MINUTE, 5),
    ]
