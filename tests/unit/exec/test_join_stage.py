"""Join stages run offline as in a pod: ports taken in event-time order, table updates and
tombstones between stream records, NULL keys, outer padding once after window plus grace,
late records, partitions placed by Kafka's Java partitioner, a three-way join, and the state
and offsets a restart restores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamhouse_runtime.exec.join_stage import JoinStageExecutor
from streamhouse_runtime.exec.pipeline import MemoryRecord, StageSettings
from streamhouse_runtime.exec.topology import JoinStageSpec, NotExecutable, split_stages
from streamhouse_runtime.io.limits import TopicLimits
from streamhouse_runtime.io.partitioner import java_partition
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.state.backend import MemoryStateBackend
from streamhouse_runtime.state.changelog import checkpoint_records, replay
from streamhouse_runtime.testing.runner import MemoryTopics, OfflineRun

pytestmark = pytest.mark.unit

STREAM_TABLE = """
CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, amount DOUBLE)
  WITH (kafka_topic='orders', value_format='JSON');
CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR)
  WITH (kafka_topic='customers', value_format='JSON', partitions={partitions});
CREATE STREAM enriched AS
SELECT o.order_id, c.name FROM orders o {kind} JOIN customers c ON o.customer_id = c.customer_id;
"""

STREAM_STREAM = """
CREATE STREAM clicks (id VARCHAR KEY, page VARCHAR)
  WITH (kafka_topic='clicks', value_format='JSON');
CREATE STREAM buys (id VARCHAR KEY, item VARCHAR)
  WITH (kafka_topic='buys', value_format='JSON');
CREATE STREAM joined AS SELECT c.page, b.item FROM clicks c
{kind} JOIN buys b WITHIN (2 SECONDS, 5 SECONDS) GRACE PERIOD 1 SECOND ON c.id = b.id;
"""


def _run(sql: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = OfflineRun(analyze(sql))
    run.feed(inputs)
    run.run()
    return [o for o in run.outputs() if o["topic"] != "streamhouse-test-dlq"]


def _customer(key: str, name: str | None, at: int, partition: int = 0) -> dict[str, Any]:
    value = {"name": name} if name is not None else None
    return {
        "topic": "customers",
        "key": key,
        "value": value,
        "timestamp": at,
        "partition": partition,
    }


def _order(order_id: int, customer: str | None, at: int) -> dict[str, Any]:
    value = {"customer_id": customer, "amount": 1.0}
    return {"topic": "orders", "key": order_id, "value": value, "timestamp": at}


def test_a_table_update_affects_the_stream_records_after_it_not_before() -> None:
    inputs = [
        _customer("c1", "Ann", 10),
        _order(1, "c1", 20),
        _customer("c1", "Anne", 30),  # between two orders of c1
        _order(2, "c1", 40),
        _customer("c1", None, 50),  # a tombstone
        _order(3, "c1", 60),
        _order(4, None, 70),  # a NULL join key
    ]
    left = _run(STREAM_TABLE.format(kind="LEFT", partitions=1), inputs)
    assert [(o["value"]["order_id"], o["value"]["name"]) for o in left] == [
        (1, "Ann"),
        (2, "Anne"),
        (3, None),
        (4, None),
    ]
    inner = _run(STREAM_TABLE.format(kind="INNER", partitions=1), inputs)
    assert [(o["value"]["order_id"], o["value"]["name"]) for o in inner] == [
        (1, "Ann"),
        (2, "Anne"),
    ]


def test_ports_are_taken_in_event_time_order_not_input_order() -> None:
    # The update is fed after the order but is earlier in event time: the order sees it.
    inputs = [_customer("c1", "Ann", 10), _order(1, "c1", 40), _customer("c1", "Anne", 30)]
    out = _run(STREAM_TABLE.format(kind="LEFT", partitions=1), inputs)
    assert [o["value"]["name"] for o in out] == ["Anne"]


def test_the_table_rows_are_where_the_java_partitioner_puts_them() -> None:
    customers = [f"c{n}" for n in range(24)]
    table = [_customer(c, f"name-{c}", 1, java_partition(c.encode(), 4)) for c in customers]
    orders = [_order(n, customers[n % 24], 10 + n) for n in range(48)]
    out = _run(STREAM_TABLE.format(kind="INNER", partitions=4), table + orders)
    assert sorted(o["value"]["order_id"] for o in out) == list(range(48))
    assert all(o["value"]["name"] == f"name-{o['key']}" for o in out)
    # A row on a partition the key does not hash to is never met: partitions are honoured.
    misplaced = [
        _customer(c, f"name-{c}", 1, (java_partition(c.encode(), 4) + 1) % 4) for c in customers
    ]
    assert _run(STREAM_TABLE.format(kind="INNER", partitions=4), misplaced + orders) == []


def _click(key: str, page: str, at: int) -> dict[str, Any]:
    return {"topic": "clicks", "key": key, "value": {"page": page}, "timestamp": at}


def _buy(key: str, item: str, at: int) -> dict[str, Any]:
    return {"topic": "buys", "key": key, "value": {"item": item}, "timestamp": at}


def test_outer_join_pads_once_when_window_and_grace_have_passed() -> None:
    inputs = [
        _click("a", "p-a", 1_000),
        _buy("b", "i-b", 1_500),
        _buy("a", "i-a", 5_500),  # 4.5 s after the click: within (2 s before, 5 s after)
        _click("c", "p-c", 6_000),
        _buy("c", "i-c-early", 3_000),  # out of order, 3 s before its click: outside 2 s
        _click("z", "p-z", 20_000),  # stream time 20 s: b, c and the early buy expire
        _buy("c", "i-c-late", 1_000),  # past its window plus grace: late, dropped
    ]
    out = _run(STREAM_STREAM.format(kind="FULL OUTER"), inputs)
    pairs = [(o["value"]["page"], o["value"]["item"], o["timestamp"]) for o in out]
    assert pairs[0] == ("p-a", "i-a", 5_500)
    # Padded once each, in time order, when stream time passed them (before the end of input
    # pads "z" last), and never the late buy.
    assert pairs[1:] == [
        (None, "i-b", 1_500),
        (None, "i-c-early", 3_000),
        ("p-c", None, 6_000),
        ("p-z", None, 20_000),
    ]
    inner = _run(STREAM_STREAM.format(kind="INNER"), inputs)
    assert [(o["value"]["page"], o["value"]["item"]) for o in inner] == [("p-a", "i-a")]


def test_a_three_way_join_repartitions_between_the_joins() -> None:
    sql = """
    CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, product_id VARCHAR)
      WITH (kafka_topic='orders', value_format='JSON');
    CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR)
      WITH (kafka_topic='customers', value_format='JSON');
    CREATE TABLE products (product_id VARCHAR PRIMARY KEY, title VARCHAR)
      WITH (kafka_topic='products', value_format='JSON');
    CREATE STREAM details AS SELECT o.order_id, c.name, p.title FROM orders o
    JOIN customers c ON o.customer_id = c.customer_id
    JOIN products p ON o.product_id = p.product_id;
    """
    plan = plan_statement(analyze(sql).persistent_queries[0])
    assert isinstance(plan, Sink)
    stages = split_stages(plan)
    assert [type(s).__name__ for s in stages] == ["StageSpec", "JoinStageSpec", "JoinStageSpec"]

    def row(topic: str, key: Any, value: dict[str, Any], at: int) -> dict[str, Any]:
        return {"topic": topic, "key": key, "value": value, "timestamp": at}

    inputs = [
        row("customers", "c1", {"name": "Ann"}, 1),
        row("products", "p1", {"title": "Pen"}, 1),
        row("orders", 1, {"customer_id": "c1", "product_id": "p1"}, 10),
        row("orders", 2, {"customer_id": "c1", "product_id": "p2"}, 11),
        row("products", "p2", {"title": "Ink"}, 12),
        row("orders", 3, {"customer_id": "c1", "product_id": "p2"}, 13),
    ]
    out = _run(sql, inputs)
    assert [o["value"] for o in out] == [
        {"order_id": 1, "name": "Ann", "title": "Pen"},
        {"order_id": 3, "name": "Ann", "title": "Ink"},
    ]
    assert [o["key"] for o in out] == ["p1", "p2"]  # keyed by the last join's key


TABLE_TABLE = """
CREATE TABLE users (user_id VARCHAR PRIMARY KEY, name VARCHAR)
  WITH (kafka_topic='users', value_format='JSON');
CREATE TABLE prefs (user_id VARCHAR PRIMARY KEY, theme VARCHAR)
  WITH (kafka_topic='prefs', value_format='JSON');
CREATE TABLE user_prefs AS SELECT u.user_id AS user_id, u.name, p.theme
FROM users u {kind} JOIN prefs p ON u.user_id = p.user_id;
"""
TABLE_CHANGES: list[dict[str, Any]] = [
    {"topic": "users", "key": "u1", "value": {"name": "Ann"}, "timestamp": 10},
    {"topic": "prefs", "key": "u1", "value": {"theme": "dark"}, "timestamp": 20},
    {"topic": "prefs", "key": "u2", "value": {"theme": "light"}, "timestamp": 30},
    {"topic": "users", "key": "u2", "value": {"name": "Bob"}, "timestamp": 40},
    {"topic": "prefs", "key": "u1", "value": None, "timestamp": 50},
    {"topic": "users", "key": "u2", "value": None, "timestamp": 60},
]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "INNER",
            [
                ("u1", ("Ann", "dark"), 20),
                ("u2", ("Bob", "light"), 40),
                ("u1", None, 50),  # a side deleted: the key's row is gone
                ("u2", None, 60),
            ],
        ),
        (
            "LEFT",
            [
                ("u1", ("Ann", None), 10),
                ("u1", ("Ann", "dark"), 20),  # no row for u2 until a user has it
                ("u2", ("Bob", "light"), 40),
                ("u1", ("Ann", None), 50),
                ("u2", None, 60),
            ],
        ),
        (
            "FULL OUTER",
            [
                ("u1", ("Ann", None), 10),
                ("u1", ("Ann", "dark"), 20),
                ("u2", (None, "light"), 30),
                ("u2", ("Bob", "light"), 40),
                ("u1", ("Ann", None), 50),
                ("u2", (None, "light"), 60),
            ],
        ),
    ],
)
def test_a_table_table_join_follows_both_sides_updates_and_tombstones(
    kind: str, expected: list[tuple[str, tuple[str | None, str | None] | None, int]]
) -> None:
    out = _run(TABLE_TABLE.format(kind=kind), TABLE_CHANGES)
    shown = [
        (
            o["key"],
            (o["value"]["name"], o["value"]["theme"]) if o["value"] else None,
            o["timestamp"],
        )
        for o in out
    ]
    assert shown == expected


def test_a_foreign_key_table_table_join_is_refused_until_it_runs() -> None:
    sql = TABLE_TABLE.format(kind="INNER").replace("u.user_id = p.user_id", "u.name = p.user_id")
    plan = plan_statement(analyze(sql).persistent_queries[0])
    assert isinstance(plan, Sink)
    with pytest.raises(NotExecutable, match="foreign-key table-table join"):
        split_stages(plan)


def _join_spec(sql: str) -> JoinStageSpec:
    plan = plan_statement(analyze(sql).persistent_queries[0])
    assert isinstance(plan, Sink)
    spec = split_stages(plan)[-1]
    assert isinstance(spec, JoinStageSpec)
    return spec


def _records(topic: str, rows: list[tuple[str, dict[str, Any], int]]) -> list[MemoryRecord]:
    return [
        MemoryRecord(topic, 0, offset, at, key.encode(), json.dumps(value).encode())
        for offset, (key, value, at) in enumerate(rows)
    ]


def test_a_restarted_stage_resumes_with_its_buffers_and_offsets() -> None:
    spec = _join_spec(STREAM_STREAM.format(kind="LEFT"))
    settings = StageSettings(query_id="q", dead_letter_topic="dlq")
    backend = MemoryStateBackend()
    first = JoinStageExecutor(spec, settings, backend)
    out = MemoryTopics()
    first.process(_records("clicks", [("a", {"page": "p1"}, 1_000)]), out)
    first.process(_records("buys", [("x", {"item": "other"}, 1_100)]), out)
    assert out.records == {}
    backend.commit(first.changes(), first.offsets())  # a checkpoint
    assert first.offsets() == {("clicks", 0): 1, ("buys", 0): 1}

    second = JoinStageExecutor(spec, settings, backend)  # a restart on the same state
    assert second.state_entries() == 2
    later = _records("buys", [("x", {"item": "other"}, 1_100), ("a", {"item": "i1"}, 2_000)])
    second.process(later[1:], out)
    (match,) = out.records["joined"]
    assert json.loads(match.value or b"") == {"page": "p1", "item": "i1"}
    second.advance(out, final=True)
    assert len(out.records["joined"]) == 1  # the matched click is never padded


def test_the_changelog_names_each_store_and_every_ports_offset() -> None:
    spec = _join_spec(STREAM_STREAM.format(kind="INNER"))
    settings = StageSettings(query_id="q", dead_letter_topic="dlq")
    executor = JoinStageExecutor(spec, settings, MemoryStateBackend())
    out = MemoryTopics()
    executor.process(_records("clicks", [("a", {"page": "p1"}, 1_000)]), out)
    executor.process(_records("buys", [("b", {"item": "i1"}, 1_000)]), out)
    writes = executor.changes()
    assert set(writes) == {"join-1-left", "join-1-right"}
    tagged, _ = executor.changelog(writes)
    assert executor.restore_writes(tagged) == writes
    records = checkpoint_records(tagged, {}, {0: 1}, b"w", {0: [7]})
    restored = replay((r.key, r.value) for r in records)
    assert restored.offset == 1 and restored.port_offsets == {1: 7}
    assert restored.store_writes == tagged
    # Cut short after the further port's offsets: nothing of that checkpoint is applied.
    cut = replay((r.key, r.value) for r in records[:-1])
    assert cut.offset is None and cut.port_offsets == {} and cut.store_writes == {}


def test_a_restarted_table_table_join_remembers_both_sides() -> None:
    spec = _join_spec(TABLE_TABLE.format(kind="INNER"))
    settings = StageSettings(query_id="q", dead_letter_topic="dlq")
    backend = MemoryStateBackend()
    first = JoinStageExecutor(spec, settings, backend)
    out = MemoryTopics()
    first.process(_records("users", [("u1", {"name": "Ann"}, 10)]), out)
    backend.commit(first.changes(), first.offsets())
    second = JoinStageExecutor(spec, settings, backend)
    assert second.state_entries() == 1
    second.process(_records("prefs", [("u1", {"theme": "dark"}, 20)]), out)
    (joined,) = out.records["user_prefs"]
    assert json.loads(joined.value or b"") == {"user_id": "u1", "name": "Ann", "theme": "dark"}
    assert joined.key == b"u1" and joined.timestamp_ms == 20


def test_a_join_dead_letters_a_bad_record_within_the_dead_letter_topics_limit() -> None:
    spec = _join_spec(STREAM_STREAM.format(kind="INNER"))
    settings = StageSettings(
        query_id="q", dead_letter_topic="dlq", dead_letter_limits=TopicLimits(max_message_bytes=400)
    )
    executor = JoinStageExecutor(spec, settings, MemoryStateBackend())
    out = MemoryTopics()
    bad = MemoryRecord("clicks", 0, 0, 1_000, b"a", b"{not json" + b"x" * 1_000)
    executor.process([bad], out)
    (letter,) = out.records["dlq"]
    headers = dict(letter.headers or [])
    assert letter.value is None and headers["streamhouse.error.value-dropped"] == b"1009"
    assert headers["streamhouse.error.topic"] == b"clicks"
    reason = headers["streamhouse.error.reason"]
    assert isinstance(reason, bytes) and reason.startswith(b"DeserializationError")
    assert executor.offsets() == {("clicks", 0): 1}  # taken: never read again
