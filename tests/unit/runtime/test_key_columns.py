"""Key columns (KEY / PRIMARY KEY) are read from the Kafka record key, never from the value,
in every value format and every key format (ksqlDB's rule)."""

from __future__ import annotations

import json
import struct
import time

import pytest

from streamhouse_runtime.exec.pipeline import Headers, MemoryRecord, StageExecutor, StageSettings
from streamhouse_runtime.exec.topology import result_key_columns, split_stages
from streamhouse_runtime.plan.nodes import Aggregate, Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.state.backend import MemoryStateBackend
from streamhouse_runtime.testing.runner import OfflineRun

pytestmark = pytest.mark.unit

NOW_MS = int(time.time() * 1000)
Sent = list[tuple[str, bytes | None, bytes | None]]


class Sink_:
    def __init__(self) -> None:
        self.records: Sent = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        reasons = {name: text for name, text in headers or [] if isinstance(text, bytes)}
        reason = reasons.get("streamhouse.error.reason")
        self.records.append((topic, key, reason if topic == "dlq" else value))


def _run(
    kind: str,
    columns: str,
    value_format: str,
    key_format: str,
    selected: str,
    records: list[tuple[bytes | None, bytes]],
) -> Sent:
    sql = (
        f"CREATE {kind} t ({columns}) WITH (kafka_topic='t', value_format='{value_format}', "
        f"key_format='{key_format}');\n"
        f"CREATE {kind} o WITH (kafka_topic='o', value_format='JSON') AS SELECT {selected} FROM t;"
    )
    _, statement = load_single_query(sql)
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    stages = split_stages(plan)
    assert len(stages) == 1
    executor = StageExecutor(
        stages[0], StageSettings(query_id="q", dead_letter_topic="dlq"), MemoryStateBackend()
    )
    sink = Sink_()
    batch = [
        MemoryRecord("t", 0, offset, NOW_MS, key, value)
        for offset, (key, value) in enumerate(records)
    ]
    executor.process(batch, sink)
    return sink.records


VALUES = {
    # The JSON value also carries fields named like the key columns: they must be ignored.
    "JSON": (
        "id BIGINT, name VARCHAR",
        json.dumps({"id": 5, "name": "n", "k": "from-value", "k2": 99}).encode(),
    ),
    "DELIMITED": ("id BIGINT, name VARCHAR", b"5,n"),
    "KAFKA": ("id BIGINT", struct.pack(">q", 5)),
}
SINGLE_KEYS = {"KAFKA": b"key-1", "JSON": b'"key-1"', "DELIMITED": b"key-1"}
MULTI_KEYS = {"JSON": b'{"k": "key-1", "k2": 7}', "DELIMITED": b"key-1,7"}
KINDS = [("STREAM", "KEY"), ("TABLE", "PRIMARY KEY")]


@pytest.mark.parametrize("key_format", sorted(SINGLE_KEYS))
@pytest.mark.parametrize("value_format", sorted(VALUES))
@pytest.mark.parametrize(("kind", "declaration"), KINDS)
def test_a_single_key_column_comes_from_the_record_key(
    kind: str, declaration: str, value_format: str, key_format: str
) -> None:
    value_columns, value = VALUES[value_format]
    columns = f"k VARCHAR {declaration}, {value_columns}"
    sent = _run(
        kind, columns, value_format, key_format, "k, id", [(SINGLE_KEYS[key_format], value)]
    )
    assert [(topic, json.loads(body or b"")) for topic, _, body in sent] == [
        ("o", {"k": "key-1", "id": 5})
    ]


@pytest.mark.parametrize("key_format", sorted(MULTI_KEYS))
@pytest.mark.parametrize("value_format", sorted(VALUES))
@pytest.mark.parametrize(("kind", "declaration"), KINDS)
def test_several_key_columns_come_from_the_record_key(
    kind: str, declaration: str, value_format: str, key_format: str
) -> None:
    value_columns, value = VALUES[value_format]
    columns = f"k VARCHAR {declaration}, k2 INT {declaration}, {value_columns}"
    sent = _run(
        kind, columns, value_format, key_format, "k, k2, id", [(MULTI_KEYS[key_format], value)]
    )
    assert [(topic, json.loads(body or b"")) for topic, _, body in sent] == [
        ("o", {"k": "key-1", "k2": 7, "id": 5})
    ]


def test_the_delimited_value_of_the_issue_has_no_key_field() -> None:
    # `CREATE STREAM t (k STRING KEY, id BIGINT, name VARCHAR)`: the value is `id,name`.
    sent = _run(
        "STREAM",
        "k STRING KEY, id BIGINT, name VARCHAR",
        "DELIMITED",
        "KAFKA",
        "k, id, name",
        [(b"a", b"1,x"), (b"b", b"2,y")],
    )
    assert [json.loads(body or b"") for _, _, body in sent] == [
        {"k": "a", "id": 1, "name": "x"},
        {"k": "b", "id": 2, "name": "y"},
    ]
    # A value that does hold the key as a third field is now one field too many.
    bad = _run("STREAM", "k STRING KEY, id BIGINT", "DELIMITED", "KAFKA", "k, id", [(b"a", b"a,1")])
    assert [(topic, reason) for topic, _, reason in bad] == [
        ("dlq", b"DeserializationError: expected 1 DELIMITED fields, got 2")
    ]


@pytest.mark.parametrize("key_format", sorted(SINGLE_KEYS))
def test_a_null_key_gives_null_key_columns_not_the_value_field(key_format: str) -> None:
    _, value = VALUES["JSON"]
    sent = _run("STREAM", "k VARCHAR KEY, id BIGINT", "JSON", key_format, "k, id", [(None, value)])
    assert [json.loads(body or b"") for _, _, body in sent] == [{"k": None, "id": 5}]


def test_a_kafka_value_with_only_key_columns_reads_no_value() -> None:
    sent = _run("STREAM", "k VARCHAR KEY", "KAFKA", "KAFKA", "k", [(b"a", b"anything")])
    assert [json.loads(body or b"") for _, _, body in sent] == [{"k": "a"}]


def test_a_kafka_key_format_holds_one_key_column() -> None:
    with pytest.raises(SqlValidationError) as caught:
        _run("STREAM", "k VARCHAR KEY, k2 INT KEY, id BIGINT", "JSON", "KAFKA", "k", [])
    (error,) = caught.value.errors[:1]
    assert error.code.value == "E109" and (error.line, error.column) == (1, 111)
    assert "key_format KAFKA holds one key column" in error.message


# -- result keys are named after what they hold -----------------------------------------------

GROUPED_SOURCE = (
    "CREATE STREAM t (region STRING KEY, shop INT KEY, id BIGINT) WITH (kafka_topic='t', "
    "value_format='JSON', key_format='{key_format}');\n"
)


def _execute(sql: str, records: list[tuple[bytes | None, bytes]]) -> Sent:
    _, statement = load_single_query(sql)
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    stages = split_stages(plan)
    assert len(stages) == 1
    executor = StageExecutor(
        stages[0], StageSettings(query_id="q", dead_letter_topic="dlq"), MemoryStateBackend()
    )
    sink = Sink_()
    batch = [
        MemoryRecord("t", 0, offset, NOW_MS, key, value)
        for offset, (key, value) in enumerate(records)
    ]
    executor.process(batch, sink)
    return sink.records


@pytest.mark.parametrize(
    ("key_format", "key", "expected"),
    [
        ("JSON", b'{"region": "eu", "shop": 7}', b'{"region":"eu","store":7}'),
        ("DELIMITED", b"eu,7", b"eu,7"),
    ],
)
def test_a_two_column_group_key_is_named_after_its_columns_and_aliases(
    key_format: str, key: bytes, expected: bytes
) -> None:
    sql = GROUPED_SOURCE.format(key_format=key_format) + (
        f"CREATE TABLE o WITH (kafka_topic='o', key_format='{key_format}') AS "
        "SELECT shop AS store, region, COUNT(*) AS n FROM t GROUP BY region, shop;"
    )
    sent = _execute(sql, [(key, b'{"id": 1}'), (key, b'{"id": 2}')])
    assert [(topic, key, json.loads(value or b"")) for topic, key, value in sent] == [
        ("o", expected, {"store": 7, "region": "eu", "n": 1}),
        ("o", expected, {"store": 7, "region": "eu", "n": 2}),
    ]


def test_a_windowed_two_column_json_key_is_named_after_its_columns() -> None:
    sql = GROUPED_SOURCE.format(key_format="JSON") + (
        "CREATE TABLE o WITH (kafka_topic='o', key_format='JSON') AS "
        "SELECT region, shop, COUNT(*) AS n FROM t WINDOW TUMBLING (SIZE 1 MINUTE) "
        "GROUP BY region, shop EMIT CHANGES;"
    )
    sent = _execute(sql, [(b'{"region": "eu", "shop": 7}', b'{"id": 1}')])
    ((topic, key, _),) = sent
    assert topic == "o" and key is not None
    window_start = struct.unpack(">q", key[-8:])[0]
    assert window_start == NOW_MS - NOW_MS % 60_000
    assert json.loads(key[:-8]) == {"region": "eu", "shop": 7}


def _result_key(select: str, group_by: str) -> tuple[str, ...]:
    sql = GROUPED_SOURCE.format(key_format="JSON") + (
        f"CREATE TABLE o WITH (kafka_topic='o') AS SELECT {select} FROM t GROUP BY {group_by};"
    )
    _, statement = load_single_query(sql)
    stage = split_stages(plan_statement(statement))[-1]  # type: ignore[arg-type]
    assert isinstance(stage.stateful, Aggregate)
    return tuple(c.name for c in result_key_columns(stage.stateful))


def test_result_key_names_follow_the_select_list() -> None:
    assert _result_key("region, COUNT(*) AS n", "region") == ("region",)
    assert _result_key("region AS area, COUNT(*) AS n", "region") == ("area",)
    assert _result_key("shop, region, COUNT(*) AS n", "region, shop") == ("region", "shop")
    # Not projected (Flink allows it): the column's own name.
    assert _result_key("COUNT(*) AS n", "region") == ("region",)
    # An expression keeps its alias, or its internal name when it is not projected.
    assert _result_key("UCASE(region) AS r, COUNT(*) AS n", "UCASE(region)") == ("r",)
    assert _result_key("COUNT(*) AS n", "UCASE(region)") == ("_g_0",)


def test_the_offline_runner_shows_result_keys_by_their_names() -> None:
    # What `streamhouse test --record` writes.
    sql = (
        "CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, region VARCHAR) "
        "WITH (kafka_topic='orders', value_format='JSON');\n"
        "CREATE TABLE totals WITH (kafka_topic='totals', key_format='JSON') AS SELECT "
        "customer_id AS customer, region, COUNT(*) AS n FROM orders GROUP BY customer_id, region;"
    )
    run = OfflineRun(analyze(sql))
    run.feed(
        [
            {"topic": "orders", "key": i, "value": {"customer_id": "c1", "region": "eu"}}
            for i in (1, 2)
        ]
    )
    run.run()
    assert [(o["key"], o["value"]["n"]) for o in run.outputs() if o["topic"] == "totals"] == [
        ({"customer": "c1", "region": "eu"}, 1),
        ({"customer": "c1", "region": "eu"}, 2),
    ]
