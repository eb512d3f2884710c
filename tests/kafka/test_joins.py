"""Joins through the real broker: 4 partitions, 2 pods. A table topic written with Kafka's Java
partitioner meets the repartitioned stream; table updates and tombstones affect the stream
records after them; a stream-stream join pads its outer rows once, after window plus grace;
inputs that cannot be co-partitioned keep the pod not ready, with the reason."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka

PARTITIONS = 4
CUSTOMERS = [f"c{n}" for n in range(16)]
KNOWN = CUSTOMERS[:12]  # c12..c15 have no table row


def _producer(broker: KafkaBroker) -> Producer:
    # The Java partitioner, as a Java producer or Kafka Streams would place the table's keys.
    return Producer(
        {"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )


def _send(
    producer: Producer, topic: str, key: str | None, value: dict[str, Any] | None, at: int
) -> None:
    producer.produce(
        topic,
        json.dumps(value).encode() if value is not None else None,
        key.encode() if key is not None else None,
        timestamp=at,
    )


def _pods(broker: KafkaBroker, directory: Path, sql: str, replicas: int = 2) -> list[QueryProcess]:
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    query_id = uuid.uuid4().hex[:10]
    return [
        QueryProcess(
            sql_file, directory, broker.bootstrap, query_id, ordinal=n, replicas=replicas
        ).start()
        for n in range(replicas)
    ]


def _stop(pods: list[QueryProcess]) -> None:
    for pod in pods:
        pod.stop()


def _values(broker: KafkaBroker, topic: str, expect: int) -> list[dict[str, Any]]:
    messages = read_messages(broker.bootstrap, topic, expect, 60)
    return [json.loads(m.value() or b"null") for m in messages]


def test_stream_table_join_on_four_partitions_and_two_pods(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    orders = make_topic("orders", partitions=PARTITIONS)
    customers = make_topic("customers", partitions=PARTITIONS)
    out = f"enriched_{orders}"
    sql = (
        f"CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DOUBLE) "
        f"WITH (kafka_topic='{orders}', value_format='JSON');\n"
        f"CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR) "
        f"WITH (kafka_topic='{customers}', value_format='JSON');\n"
        f"CREATE STREAM enriched WITH (kafka_topic='{out}') AS "
        "SELECT o.order_id, o.customer_id, c.name FROM orders o "
        "LEFT JOIN customers c ON o.customer_id = c.customer_id;"
    )
    base = int(time.time() * 1000) - 600_000
    producer = _producer(kafka_broker)
    for n, customer in enumerate(KNOWN):
        _send(producer, customers, customer, {"name": f"name-{customer}"}, base + n)
    assert producer.flush(30) == 0
    pods = _pods(kafka_broker, tmp_path, sql)
    try:
        first = 200
        for n in range(first):
            customer = CUSTOMERS[n % len(CUSTOMERS)]
            _send(producer, orders, None, {"order_id": n, "customer_id": customer}, base + 1000 + n)
        # A NULL join key: passed with NULL table columns (LEFT).
        _send(producer, orders, None, {"order_id": 10_000, "customer_id": None}, base + 1500)
        assert producer.flush(30) == 0
        results = _values(kafka_broker, out, first + 1)
        assert len(results) == first + 1
        for row in results:
            if row["order_id"] == 10_000:
                assert row["name"] is None
                continue
            customer = CUSTOMERS[row["order_id"] % len(CUSTOMERS)]
            expected = f"name-{customer}" if customer in KNOWN else None
            assert row == {"order_id": row["order_id"], "customer_id": customer, "name": expected}
        # An update and a tombstone, then more orders: those see the table as it is now.
        _send(producer, customers, "c0", {"name": "renamed"}, base + 2000)
        _send(producer, customers, "c1", None, base + 2001)
        _send(producer, customers, "c12", {"name": "late-comer"}, base + 2002)
        assert producer.flush(30) == 0
        time.sleep(1.5)  # the table updates are taken before the later stream records
        for n in range(first, first + 64):
            customer = CUSTOMERS[n % len(CUSTOMERS)]
            _send(producer, orders, None, {"order_id": n, "customer_id": customer}, base + 3000 + n)
        assert producer.flush(30) == 0
        results = _values(kafka_broker, out, first + 1 + 64)
        later = {r["order_id"]: r for r in results if first <= r["order_id"] < first + 64}
        assert len(later) == 64
        for order_id, row in later.items():
            customer = CUSTOMERS[order_id % len(CUSTOMERS)]
            expected = {
                "c0": "renamed",
                "c1": None,
                "c12": "late-comer",
            }.get(customer, f"name-{customer}" if customer in KNOWN else None)
            assert row["name"] == expected, (order_id, customer, row)
        # Every output partition holds results: both pods joined their partitions.
        partitions = {m.partition() for m in read_messages(kafka_broker.bootstrap, out, 265, 10)}
        assert len(partitions) > 1
    finally:
        _stop(pods)


def test_stream_stream_outer_join_pads_once_after_window_and_grace(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    left = make_topic("clicks", partitions=PARTITIONS)
    right = make_topic("buys", partitions=PARTITIONS)
    out = f"joined_{left}"
    sql = (
        f"CREATE STREAM clicks (id VARCHAR KEY, page VARCHAR) "
        f"WITH (kafka_topic='{left}', value_format='JSON');\n"
        f"CREATE STREAM buys (id VARCHAR KEY, item VARCHAR) "
        f"WITH (kafka_topic='{right}', value_format='JSON');\n"
        f"CREATE STREAM joined WITH (kafka_topic='{out}') AS "
        "SELECT c.id AS id, c.page, b.item FROM clicks c "
        "FULL OUTER JOIN buys b WITHIN 10 SECONDS GRACE PERIOD 5 SECONDS ON c.id = b.id;"
    )
    base = int(time.time() * 1000) - 600_000
    producer = _producer(kafka_broker)
    pods = _pods(kafka_broker, tmp_path, sql)
    try:
        keys = [f"k{n}" for n in range(40)]
        for n, key in enumerate(keys):
            _send(producer, left, key, {"page": f"p{n}"}, base + n)
            if n % 2 == 0:  # even keys buy within the window, out of order (before the click)
                _send(producer, right, key, {"item": f"i{n}"}, base + n - 3_000)
        # A buy 30 s after its click: outside WITHIN, so both sides are padded.
        _send(producer, right, "k1", {"item": "too-late-to-match"}, base + 30_000)
        assert producer.flush(30) == 0
        time.sleep(2)
        # Advance every partition's stream time past window plus grace with keys of their own.
        for n in range(64):
            _send(producer, left, f"tick{n}", {"page": "tick"}, base + 120_000)
        assert producer.flush(30) == 0
        # 20 matches, 20 padded clicks (odd keys), 1 padded buy; the ticks are padded only
        # once stream time passes them, which it has not.
        results = _values(kafka_broker, out, 41)
        assert len(results) == 41
        by_id: dict[str, list[dict[str, Any]]] = {}
        for row in results:
            by_id.setdefault(row["id"] if row["id"] is not None else "?", []).append(row)
        for n, key in enumerate(keys):
            expected_item = f"i{n}" if n % 2 == 0 else None
            assert by_id.get(key) == [{"id": key, "page": f"p{n}", "item": expected_item}]
        assert by_id["?"] == [{"id": None, "page": None, "item": "too-late-to-match"}]
        # A record past the grace period of its window is late: dropped, never joined.
        _send(producer, right, "k3", {"item": "late"}, base + 3)
        assert producer.flush(30) == 0
        wait_until(
            lambda: sum(p.metric("streamhouse_late_records_total") for p in pods) >= 1,
            30,
            "the late record counted",
        )
        assert len(read_messages(kafka_broker.bootstrap, out, 42, timeout_s=3)) == 41
    finally:
        _stop(pods)


def test_a_join_of_topics_with_different_partition_counts_is_not_ready_with_the_reason(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    views = make_topic("views", partitions=4)
    pages = make_topic("pages", partitions=3)
    sql = (
        f"CREATE STREAM views (page_id VARCHAR KEY, user_id VARCHAR) "
        f"WITH (kafka_topic='{views}', value_format='JSON');\n"
        f"CREATE TABLE pages (page_id VARCHAR PRIMARY KEY, title VARCHAR) "
        f"WITH (kafka_topic='{pages}', value_format='JSON');\n"
        f"CREATE STREAM titled WITH (kafka_topic='titled_{views}') AS "
        "SELECT v.page_id, v.user_id, p.title FROM views v JOIN pages p ON v.page_id = p.page_id;"
    )
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(sql)
    pod = QueryProcess(sql_file, tmp_path, kafka_broker.bootstrap, uuid.uuid4().hex[:10])
    pod.start(wait_ready=False)
    try:
        wait_until(lambda: pod.probe("/healthz")[0] == 200, 60, "healthz")
        wait_until(lambda: "co-partitioned" in pod.probe("/readyz")[1], 30, "readyz reason")
        status, body = pod.probe("/readyz")
        assert status == 503
        assert f"{views} (4 partitions) and {pages} (3 partitions)" in body
        assert "partitions=4" in body
    finally:
        pod.stop()


def test_table_table_join_follows_updates_and_tombstones_of_both_sides(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    users = make_topic("users", partitions=PARTITIONS)
    prefs = make_topic("prefs", partitions=PARTITIONS)
    out = f"user_prefs_{users}"
    sql = (
        f"CREATE TABLE users (user_id VARCHAR PRIMARY KEY, name VARCHAR) "
        f"WITH (kafka_topic='{users}', value_format='JSON');\n"
        f"CREATE TABLE prefs (user_id VARCHAR PRIMARY KEY, theme VARCHAR) "
        f"WITH (kafka_topic='{prefs}', value_format='JSON');\n"
        f"CREATE TABLE user_prefs WITH (kafka_topic='{out}') AS "
        "SELECT u.user_id AS user_id, u.name, p.theme FROM users u "
        "INNER JOIN prefs p ON u.user_id = p.user_id;"
    )
    base = int(time.time() * 1000) - 600_000
    producer = _producer(kafka_broker)
    for n in range(32):
        _send(producer, users, f"u{n}", {"name": f"user{n}"}, base + n)
    assert producer.flush(30) == 0
    pods = _pods(kafka_broker, tmp_path, sql)
    try:
        for n in range(32):
            _send(producer, prefs, f"u{n}", {"theme": "dark" if n % 2 else "light"}, base + 100 + n)
        assert producer.flush(30) == 0
        joined = read_messages(kafka_broker.bootstrap, out, 32, 60)
        assert len(joined) == 32
        for n in range(8):  # a side deleted: a tombstone of the key
            _send(producer, prefs, f"u{n}", None, base + 200 + n)
        _send(producer, users, "u9", {"name": "renamed"}, base + 300)
        assert producer.flush(30) == 0
        latest: dict[str, Any] = {}
        for message in read_messages(kafka_broker.bootstrap, out, 32 + 9, 60):
            key = (message.key() or b"").decode()
            value = message.value()
            latest[key] = json.loads(value) if value is not None else None
        assert {k for k, v in latest.items() if v is None} == {f"u{n}" for n in range(8)}
        assert latest["u9"] == {"user_id": "u9", "name": "renamed", "theme": "dark"}
        assert latest["u10"] == {"user_id": "u10", "name": "user10", "theme": "light"}
    finally:
        _stop(pods)


def test_inputs_written_in_transactions_bootstrap_and_join(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """The last offset of a partition written in a transaction is its commit marker, which a
    consumer never returns: the table's bootstrap still ends, and an empty stream port still
    counts as caught up."""
    orders = make_topic("orders", partitions=2)
    customers = make_topic("customers", partitions=2)
    out = f"enriched_{orders}"
    sql = (
        f"CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR KEY) "
        f"WITH (kafka_topic='{orders}', value_format='JSON');\n"
        f"CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR) "
        f"WITH (kafka_topic='{customers}', value_format='JSON');\n"
        f"CREATE STREAM enriched WITH (kafka_topic='{out}') AS "
        "SELECT o.order_id, c.name FROM orders o JOIN customers c "
        "ON o.customer_id = c.customer_id;"
    )
    base = int(time.time() * 1000) - 600_000
    producer = Producer(
        {"bootstrap.servers": kafka_broker.bootstrap, "partitioner": "murmur2_random",
         "transactional.id": f"tx-{uuid.uuid4().hex[:8]}"}
    )  # fmt: skip
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(8):
        _send(producer, customers, f"c{n}", {"name": f"name-c{n}"}, base + n)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for n in range(16):
        _send(producer, orders, f"c{n % 8}", {"order_id": n}, base + 100 + n)
    producer.commit_transaction(30)
    pods = _pods(kafka_broker, tmp_path, sql, replicas=1)
    try:
        rows = _values(kafka_broker, out, 16)
        assert sorted((r["order_id"], r["name"]) for r in rows) == [
            (n, f"name-c{n % 8}") for n in range(16)
        ]
    finally:
        _stop(pods)
