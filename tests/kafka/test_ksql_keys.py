"""ksqlDB's key rules on the real broker: key columns are read from the record key (never from
the value), and a grouped result's key is named after the columns it holds."""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, value, key)
    assert producer.flush(60) == 0


def _start(broker: KafkaBroker, directory: Path, sql: str, dead_letters: str) -> QueryProcess:
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    return QueryProcess(
        sql_file,
        directory,
        broker.bootstrap,
        uuid.uuid4().hex[:10],
        extra_env={"STREAMHOUSE_DEAD_LETTER_TOPIC": dead_letters},
    ).start()


def test_delimited_values_with_a_two_column_json_key(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("keyed")
    out = f"out_{source}"
    sql = (
        "CREATE STREAM t (region STRING KEY, shop INT KEY, id BIGINT, name VARCHAR) WITH "
        f"(kafka_topic = '{source}', value_format = 'DELIMITED', key_format = 'JSON');\n"
        f"CREATE STREAM o WITH (kafka_topic = '{out}', value_format = 'JSON') AS "
        "SELECT region, shop, id, name FROM t;"
    )
    _produce(
        kafka_broker.bootstrap,
        source,
        [
            (b'{"region": "eu", "shop": 7}', b"1,x"),
            (b'{"region": "us", "shop": 8}', b"2,y"),
            (None, b"3,z"),  # no key: the key columns are NULL
            (b'{"region": "eu", "shop": 7}', b"eu,7,4,w"),  # the key is not in the value
        ],
    )
    query = _start(kafka_broker, tmp_path, sql, f"{source}-dlq")
    try:
        results = read_messages(kafka_broker.bootstrap, out, 3)
        dead = read_messages(kafka_broker.bootstrap, f"{source}-dlq", 1)
    finally:
        assert query.stop() == 0
    assert [json.loads(m.value() or b"") for m in results] == [
        {"region": "eu", "shop": 7, "id": 1, "name": "x"},
        {"region": "us", "shop": 8, "id": 2, "name": "y"},
        {"region": None, "shop": None, "id": 3, "name": "z"},
    ]
    assert (
        b"expected 2 DELIMITED fields, got 4"
        in dict(dead[0].headers() or [])["streamhouse.error.reason"]
    )


def test_a_grouped_result_key_is_named_after_its_columns(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=2)
    out = f"totals_{source}"
    sql = (
        "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, region VARCHAR) WITH "
        f"(kafka_topic = '{source}', value_format = 'JSON');\n"
        f"CREATE TABLE totals WITH (kafka_topic = '{out}', key_format = 'JSON') AS "
        "SELECT customer_id AS customer, region, COUNT(*) AS n FROM orders "
        "GROUP BY customer_id, region;"
    )
    orders = [(1, "c1", "eu"), (2, "c2", "us"), (3, "c1", "eu")]
    _produce(
        kafka_broker.bootstrap,
        source,
        [
            (str(i).encode(), json.dumps({"order_id": i, "customer_id": c, "region": r}).encode())
            for i, c, r in orders
        ],
    )
    query = _start(kafka_broker, tmp_path, sql, f"{source}-dlq")
    try:
        results = read_messages(kafka_broker.bootstrap, out, 3)
    finally:
        assert query.stop() == 0
    latest = {m.key(): json.loads(m.value() or b"")["n"] for m in results}
    assert {tuple(json.loads(key or b"").items()): n for key, n in latest.items()} == {
        (("customer", "c1"), ("region", "eu")): 2,
        (("customer", "c2"), ("region", "us")): 1,
    }


@pytest.mark.parametrize(
    ("columns", "formats", "record", "expected"),
    [
        (  # a KAFKA (primitive) value and a two-column DELIMITED key
            "region STRING KEY, shop INT KEY, amount BIGINT",
            "value_format = 'KAFKA', key_format = 'DELIMITED'",
            (b"eu,7", struct.pack(">q", 250)),
            {"region": "eu", "shop": 7, "amount": 250},
        ),
        (  # a JSON value that also holds a field named like the key column: the key wins
            "region STRING KEY, shop INT KEY, amount BIGINT",
            "value_format = 'JSON', key_format = 'JSON'",
            (b'{"region": "eu", "shop": 7}', b'{"region": "us", "shop": 1, "amount": 250}'),
            {"region": "eu", "shop": 7, "amount": 250},
        ),
        (  # a JSON value and a KAFKA string key
            "region STRING KEY, shop INT, amount BIGINT",
            "value_format = 'JSON', key_format = 'KAFKA'",
            (b"eu", b'{"region": "us", "shop": 7, "amount": 250}'),
            {"region": "eu", "shop": 7, "amount": 250},
        ),
    ],
)
def test_key_columns_come_from_the_key_in_other_formats(
    kafka_broker: KafkaBroker,
    make_topic: Callable[..., str],
    tmp_path: Path,
    columns: str,
    formats: str,
    record: tuple[bytes, bytes],
    expected: dict[str, object],
) -> None:
    source = make_topic("keyed")
    out = f"out_{source}"
    sql = (
        f"CREATE STREAM t ({columns}) WITH (kafka_topic = '{source}', {formats});\n"
        f"CREATE STREAM o WITH (kafka_topic = '{out}', value_format = 'JSON') AS "
        "SELECT region, shop, amount FROM t;"
    )
    _produce(kafka_broker.bootstrap, source, [record])
    query = _start(kafka_broker, tmp_path, sql, f"{source}-dlq")
    try:
        results = read_messages(kafka_broker.bootstrap, out, 1)
    finally:
        assert query.stop() == 0
    assert [json.loads(m.value() or b"") for m in results] == [expected]


def test_the_ksqldb_mode_on_the_broker_session_keys_values_and_timestamps(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """STREAMHOUSE_COMPATIBILITY=ksqldb (what the operator sets for spec.compatibility) in a
    query process: Kafka Streams' session key layout, the key only in the key, upper-cased
    names, and the largest input timestamp on each result."""
    source = make_topic("clicks")
    out = f"sessions_{source}"
    sql = (
        "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR) WITH "
        f"(kafka_topic = '{source}', value_format = 'JSON');\n"
        f"CREATE TABLE sessions WITH (kafka_topic = '{out}') AS SELECT user_id, COUNT(*) "
        "FROM clicks WINDOW SESSION (60 SECONDS) GROUP BY user_id;"
    )
    now_ms = int(time.time() * 1000) // 1000 * 1000
    first, second = now_ms - 10_000, now_ms - 4_000
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 5})
    for timestamp in (first, second):
        producer.produce(source, b'{"page": "/"}', b"u1", timestamp=timestamp)
    assert producer.flush(60) == 0
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(sql)
    query = QueryProcess(
        sql_file,
        tmp_path,
        kafka_broker.bootstrap,
        uuid.uuid4().hex[:10],
        extra_env={
            "STREAMHOUSE_DEAD_LETTER_TOPIC": f"{source}-dlq",
            "STREAMHOUSE_COMPATIBILITY": "ksqldb",
        },
    ).start()
    try:
        results = read_messages(kafka_broker.bootstrap, out, 3)
    finally:
        assert query.stop() == 0
    assert [m.key() for m in results] == [
        b"u1" + struct.pack(">qq", first, first),  # the key, then the end, then the start
        b"u1" + struct.pack(">qq", first, first),  # the merged session's tombstone
        b"u1" + struct.pack(">qq", second, first),
    ]
    assert [json.loads(m.value() or b"null") for m in results] == [
        {"KSQL_COL_0": 1},
        None,
        {"KSQL_COL_0": 2},
    ]
    assert [m.timestamp()[1] for m in results] == [first, first, second]
