"""A stage's progress per input partition (next offset to consume, highest event time) over
batches that interleave partitions, skip records and fail midway."""

from __future__ import annotations

import pytest

from streamhouse_runtime.exec.pipeline import (
    ErrorPolicy,
    Headers,
    MemoryRecord,
    QueryFailed,
    StageExecutor,
    StageSettings,
)
from streamhouse_runtime.exec.topology import split_stages
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.state.backend import MemoryStateBackend

pytestmark = pytest.mark.unit

SQL = (
    "CREATE STREAM s (v BIGINT, ts TIMESTAMP) "
    "WITH (kafka_topic = 's', value_format = 'JSON', timestamp = 'ts');\n"
    "CREATE STREAM out WITH (kafka_topic = 'out') AS SELECT * FROM s WHERE v > 0;"
)


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None]] = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        self.records.append((topic, value))


def _executor(policy: ErrorPolicy) -> StageExecutor:
    _, statement = load_single_query(SQL)
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    settings = StageSettings(query_id="q", dead_letter_topic="dlq", error_policy=policy)
    return StageExecutor(split_stages(plan)[0], settings, MemoryStateBackend())


def _record(partition: int, offset: int, value: bytes | None) -> MemoryRecord:
    return MemoryRecord("s", partition, offset, 1, None, value)


def test_progress_of_interleaved_partitions() -> None:
    executor = _executor(ErrorPolicy.DEAD_LETTER)
    sent = Sent()
    executor.process(
        [
            _record(0, 10, b'{"v": 1, "ts": 500}'),
            _record(0, 11, b'{"v": 0, "ts": 900}'),  # filtered out, still progress
            _record(1, 3, b'{"v": 2, "ts": 700}'),
            _record(0, 12, b'{"v": 3, "ts": 800}'),  # older than the partition's newest
            _record(1, 4, None),  # a tombstone: consumed, no event time
            _record(2, 7, b"not json"),  # dead-lettered: consumed, no event time
        ],
        sent,
    )
    assert executor.positions == {0: 13, 1: 5, 2: 8}
    assert executor.max_event_time == {0: 900, 1: 700}
    assert [topic for topic, _ in sent.records] == ["out", "out", "out", "dlq"]

    executor.process([_record(1, 5, b'{"v": 1, "ts": 650}')], sent)
    assert executor.positions == {0: 13, 1: 6, 2: 8}
    assert executor.max_event_time == {0: 900, 1: 700}  # never moves back


def test_progress_up_to_a_record_that_fails_the_query() -> None:
    executor = _executor(ErrorPolicy.FAIL)
    with pytest.raises(QueryFailed):
        executor.process(
            [
                _record(0, 0, b'{"v": 1, "ts": 100}'),
                _record(0, 1, b"not json"),
                _record(0, 2, b'{"v": 1, "ts": 300}'),
            ],
            Sent(),
        )
    assert executor.positions == {0: 2}
    assert executor.max_event_time == {0: 100}


def test_a_stage_forgets_the_deduplication_of_partitions_it_no_longer_owns() -> None:
    """After a scale-out, a pod's checkpoints must not write its old de-duplication entries of
    another pod's partitions back into their changelog."""
    import pickle

    from streamhouse_runtime.exec.dedup import DEDUP_STORE, SOURCE_HEADER

    _, statement = load_single_query(
        "CREATE STREAM o (c VARCHAR, n BIGINT) WITH (kafka_topic = 'o', value_format = 'JSON');\n"
        "CREATE TABLE t WITH (kafka_topic = 't') AS SELECT c, SUM(n) AS s FROM o GROUP BY c;"
    )
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    stage = split_stages(plan)[1]  # reads the repartition topic, de-duplicates by source
    executor = StageExecutor(stage, StageSettings("q", "dlq"), MemoryStateBackend())

    def row(partition: int, source_offset: int) -> MemoryRecord:
        header: Headers = [(SOURCE_HEADER, b"%d:%d" % (partition, source_offset))]
        value = b'{"c": "a", "n": 1}'
        return MemoryRecord(executor.input_topic, partition, source_offset, 1, b"a", value, header)

    executor.process([row(0, 5), row(1, 7)], Sent())
    executor.changes()
    executor.retain_partitions({0})
    executor.process([row(0, 6)], Sent())
    written = executor.changes()[DEDUP_STORE]
    prefix = executor._dedup_prefix()
    slots = {pickle.loads(key[len(prefix) :]) for key in written}
    assert slots == {(0, "0")}
