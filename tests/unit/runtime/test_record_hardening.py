"""No record can stop a stage: every hostile record is dead-lettered (or counted) with a
readable reason, and a record that fails part-way leaves the state as it was."""

from __future__ import annotations

import json
import struct
import time

import pytest

from streamhouse_runtime.exec.pipeline import (
    Headers,
    MemoryRecord,
    StageExecutor,
    StageSettings,
)
from streamhouse_runtime.exec.topology import split_stages
from streamhouse_runtime.io.limits import TopicLimits
from streamhouse_runtime.io.serde import _exact_loads
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.state.backend import MemoryStateBackend

pytestmark = pytest.mark.unit

NOW_MS = int(time.time() * 1000)
SOURCE = (
    "CREATE STREAM s (k VARCHAR KEY, v BIGINT, i INT, d DECIMAL(10, 2), msg VARCHAR, ts BIGINT) "
    "WITH (kafka_topic = 's', value_format = 'JSON', timestamp = 'ts');\n"
)


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, int, Headers | None]] = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        self.records.append((topic, key, value, timestamp_ms, headers))

    def on(self, topic: str) -> list[tuple[str, bytes | None, bytes | None, int, Headers | None]]:
        return [r for r in self.records if r[0] == topic]

    def reasons(self) -> list[str]:
        return [dict(r[4] or [])["streamhouse.error.reason"].decode() for r in self.on("dlq")]


def _executor(query: str, limits: TopicLimits | None = None, lateness_ms: int = 0) -> StageExecutor:
    _, statement = load_single_query(SOURCE + query)
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    settings = StageSettings(query_id="q", dead_letter_topic="dlq", lateness_ms=lateness_ms)
    if limits is not None:
        settings.output_limits = limits
    stages = split_stages(plan)
    assert len(stages) == 1
    return StageExecutor(stages[0], settings, MemoryStateBackend())


def _records(*values: object, key: bytes | None = b"a") -> list[MemoryRecord]:
    out = []
    for offset, value in enumerate(values):
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        out.append(MemoryRecord("s", 0, offset, NOW_MS, key, raw))
    return out


def _row(**fields: object) -> dict[str, object]:
    return {"v": 1, "i": 1, "d": 1, "msg": "x", "ts": NOW_MS, **fields}


def test_integer_overflow_is_dead_lettered_and_the_rest_goes_on() -> None:
    executor = _executor("CREATE STREAM o WITH (kafka_topic='o') AS SELECT i + i AS j FROM s;")
    sent = Sent()
    executor.process(_records(_row(i=2147483647), _row(i=5)), sent)
    assert [json.loads(r[2] or b"") for r in sent.on("o")] == [{"J": 10}] or [
        json.loads(r[2] or b"") for r in sent.on("o")
    ] == [{"j": 10}]
    assert len(sent.reasons()) == 1
    assert "integer overflow" in sent.reasons()[0]


def test_sum_overflow_leaves_the_aggregate_untouched() -> None:
    executor = _executor(
        "CREATE TABLE t WITH (kafka_topic='t') AS "
        "SELECT k, SUM(v) AS total, COUNT(*) AS n FROM s GROUP BY k;"
    )
    sent = Sent()
    big = 2**63 - 1
    executor.process(_records(_row(v=big), _row(v=big), _row(v=-5)), sent)
    assert "integer overflow" in sent.reasons()[0]
    results = [json.loads(r[2] or b"") for r in sent.on("t")]
    assert [(r["total"], r["n"]) for r in results] == [(big, 1), (big - 5, 2)]


def test_a_failure_after_the_fold_undoes_the_state_change() -> None:
    # The projection after the aggregate overflows for the second record only: that
    # record is dead-lettered and its contribution is not in the group's state.
    executor = _executor(
        "CREATE TABLE t WITH (kafka_topic='t') AS "
        "SELECT k, SUM(i) * 10000000000 AS scaled, COUNT(*) AS n FROM s GROUP BY k;"
    )
    sent = Sent()
    executor.process(_records(_row(i=1), _row(i=2147483647), _row(i=2)), sent)
    assert len(sent.reasons()) == 1
    results = [json.loads(r[2] or b"") for r in sent.on("t")]
    assert [(r["scaled"], r["n"]) for r in results] == [(10**10, 1), (3 * 10**10, 2)]


def test_hopping_window_record_failing_in_a_later_window_changes_no_window() -> None:
    executor = _executor(
        "CREATE TABLE t WITH (kafka_topic='t') AS SELECT k, SUM(v) AS total, COUNT(*) AS n "
        "FROM s WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 10 SECONDS) GROUP BY k "
        "EMIT CHANGES;",
        lateness_ms=60_000,
    )
    sent = Sent()
    base = NOW_MS - NOW_MS % 10_000 - 60_000
    big = 2**63 - 1_000
    # Window B = [base, base+20s) holds a large sum; window A = [base-10s, base+10s) not.
    executor.process(_records(_row(v=big, ts=base + 12_000)), sent)
    # In A (folded first) and B (overflows): the record must be in neither.
    executor.process(_records(_row(v=2_000, ts=base + 1_000)), sent)
    assert len(sent.reasons()) == 1 and "integer overflow" in sent.reasons()[0]
    executor.process(_records(_row(v=1, ts=base + 2_000)), sent)
    latest = {}
    for _, key, value, _, _ in sent.on("t"):
        assert key is not None
        window_start = struct.unpack(">q", key[-8:])[0]
        row = json.loads(value or b"")
        latest[window_start] = (row["total"], row["n"])
    assert latest[base - 10_000] == (1, 1)
    assert latest[base] == (big + 1, 2)


def test_null_group_keys_are_dropped_and_counted() -> None:
    executor = _executor(
        "CREATE TABLE t WITH (kafka_topic='t') AS SELECT k, COUNT(*) AS n FROM s GROUP BY k;"
    )
    sent = Sent()
    executor.process(_records(_row(), _row(), key=None) + _records(_row()), sent)
    assert executor.counters.null_keys == 2
    assert not sent.on("dlq")
    assert [json.loads(r[2] or b"")["n"] for r in sent.on("t")] == [1]
    assert all(r[1] is not None for r in sent.on("t"))


def test_hostile_values_get_readable_reasons() -> None:
    executor = _executor(
        "CREATE STREAM o WITH (kafka_topic='o') AS "
        "SELECT d * 2 AS d2, SQRT(v) AS r, REGEXP_EXTRACT(k, msg) AS x FROM s;"
    )
    sent = Sent()
    deep = b'{"d": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    executor.process(
        _records(
            _row(d="abc"),
            _row(v=-1),
            _row(msg="(a)\\1"),
            b'{"d": NaN, "ts": 1}',
            deep,
            b"\xff\xfe",
            _row(ts=None),
            _row(ts=-5),
            _row(ts=NOW_MS + 2 * 3_600_000),
            _row(),
        ),
        sent,
    )
    reasons = sent.reasons()
    assert len(reasons) == 9 and len(sent.on("o")) == 1
    assert "'abc' is not a number for DECIMAL(10,2)" in reasons[0]
    assert "SQRT of a negative number" in reasons[1]
    assert "RE2" in reasons[2]
    assert "invalid JSON" in reasons[3] or "not a JSON number" in reasons[3]
    assert "nested too deeply" in reasons[4] or "depth limit" in reasons[4]
    assert "event time ts is NULL" in reasons[6]
    assert "before the epoch" in reasons[7]
    assert "ahead of now" in reasons[8]
    assert not any("<class" in reason for reason in reasons)


def test_outputs_the_topic_refuses_are_errors_of_their_record() -> None:
    limits = TopicLimits(max_message_bytes=2_000, compacted=True)
    executor = _executor("CREATE STREAM o WITH (kafka_topic='o') AS SELECT * FROM s;", limits)
    sent = Sent()
    batch = _records(_row(msg="x" * 5_000), _row())
    batch.append(MemoryRecord("s", 0, 2, NOW_MS, None, json.dumps(_row()).encode()))
    executor.process(batch, sent)
    reasons = sent.reasons()
    assert len(sent.on("o")) == 1
    assert "larger than o's max.message.bytes" in reasons[0]
    assert "without a key cannot go to compacted topic o" in reasons[1]
    # The dead letter of an oversized record keeps only key and headers when the
    # dead-letter topic could not take the value either (default limits: 1 MB, fine here).
    assert sent.on("dlq")[0][2] is not None


def test_deep_json_on_the_exact_decimal_path_is_a_value_error() -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    with pytest.raises(ValueError, match="nested too deeply"):
        _exact_loads(deep)
    with pytest.raises(ValueError, match="not a JSON number"):
        _exact_loads(b'{"a": NaN}')
