"""Outputs and internal topics are produced with Kafka's Java partitioner (librdkafka
`murmur2_random`): a key lands where a Java producer, Kafka Streams or ksqlDB would put it, so
our topics co-partition with theirs. The Java rule is `io/partitioner.py` in the runtime, checked
here against librdkafka's `murmur2_random` and Kafka's own `Utils.murmur2`."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer

from streamhouse_runtime.exec.topology import internal_topic
from streamhouse_runtime.io.partitioner import java_partition
from streamhouse_runtime.state.backend import RocksdbStateBackend
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.processes import run_build_script
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka

PARTITIONS = 4
CUSTOMERS = [f"customer-{n}" for n in range(64)]  # >= 50 distinct keys

ORDERS = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DOUBLE)
  WITH (kafka_topic = '{topic}', value_format = 'JSON');
"""


def _orders(count: int) -> list[bytes]:
    return [
        json.dumps(
            {"order_id": n, "customer_id": CUSTOMERS[n % len(CUSTOMERS)], "amount": 1.5}
        ).encode()
        for n in range(count)
    ]


def _produce(bootstrap: str, topic: str, values: list[bytes], **config: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for value in values:
        producer.produce(topic, value, None)
    assert producer.flush(60) == 0


def _produce_keyed(bootstrap: str, topic: str, keys: list[bytes], **config: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for key in keys:
        producer.produce(topic, b"v", key)
    assert producer.flush(60) == 0


def _start(broker: KafkaBroker, directory: Path, sql: str, **env: str) -> QueryProcess:
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    query_id = uuid.uuid4().hex[:10]
    return QueryProcess(sql_file, directory, broker.bootstrap, query_id, extra_env=env).start()


def _misplaced(messages: list[Message]) -> list[tuple[bytes, int, int]]:
    """(key, partition, Java's partition) of every record not where Java would put it."""
    wrong = []
    for message in messages:
        key = message.key()
        assert key is not None
        expected = java_partition(key, PARTITIONS)
        if message.partition() != expected:
            wrong.append((key, int(message.partition() or 0), expected))
    return wrong


def _assert_java_placement(messages: list[Message]) -> None:
    keys = {m.key() for m in messages}
    assert len(keys) >= 50
    assert {m.partition() for m in messages} == set(range(PARTITIONS))
    assert _misplaced(messages) == []


def test_partition_by_output_puts_each_key_where_a_java_producer_would(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=1)
    out = f"by_customer_{source}"
    sql = ORDERS.format(topic=source) + (
        f"CREATE STREAM by_customer WITH (kafka_topic = '{out}', partitions = {PARTITIONS}) "
        "AS SELECT * FROM orders PARTITION BY customer_id;"
    )
    _produce(kafka_broker.bootstrap, source, _orders(256))
    query = _start(kafka_broker, tmp_path, sql)
    try:
        messages = read_messages(kafka_broker.bootstrap, out, 256)
    finally:
        assert query.stop() == 0
    assert len(messages) == 256
    assert {m.key() for m in messages} == {c.encode() for c in CUSTOMERS}
    _assert_java_placement(messages)


def test_a_partitioner_in_the_producer_overrides_wins(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=1)
    out = f"by_customer_{source}"
    sql = ORDERS.format(topic=source) + (
        f"CREATE STREAM by_customer WITH (kafka_topic = '{out}', partitions = {PARTITIONS}) "
        "AS SELECT * FROM orders PARTITION BY customer_id;"
    )
    _produce(kafka_broker.bootstrap, source, _orders(len(CUSTOMERS)))
    override = json.dumps({"partitioner": "consistent_random"})  # librdkafka's CRC32 default
    query = _start(kafka_broker, tmp_path, sql, STREAMHOUSE_PRODUCER_CONFIG=override)
    try:
        messages = read_messages(kafka_broker.bootstrap, out, len(CUSTOMERS))
    finally:
        assert query.stop() == 0
    assert len(messages) == len(CUSTOMERS)
    assert len(_misplaced(messages)) > len(CUSTOMERS) // 2  # CRC32 agrees only by chance


def test_group_by_output_and_its_repartition_topic_follow_the_java_rule(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=PARTITIONS)  # the repartition topic gets 4 too
    out = f"totals_{source}"
    sql = ORDERS.format(topic=source) + (
        f"CREATE TABLE totals WITH (kafka_topic = '{out}', partitions = {PARTITIONS}) AS "
        "SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id;"
    )
    _produce(kafka_broker.bootstrap, source, _orders(256))
    # No checkpoint while we read: the repartition topic keeps its records until one.
    query = _start(kafka_broker, tmp_path, sql, STREAMHOUSE_CHECKPOINT_INTERVAL_MS="600000")
    try:
        outputs = read_messages(kafka_broker.bootstrap, out, 256)
        groupby = internal_topic(query.query_id, "groupby")
        repartitioned = read_messages(kafka_broker.bootstrap, groupby, 256)
    finally:
        assert query.stop() == 0
    assert {m.key() for m in outputs} == {c.encode() for c in CUSTOMERS}
    _assert_java_placement(outputs)
    assert len(repartitioned) == 256
    assert len({m.key() for m in repartitioned}) == len(CUSTOMERS)  # JSON keys: '"customer-1"'
    _assert_java_placement(repartitioned)


def test_librdkafka_murmur2_random_agrees_with_the_harness(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("murmur2", partitions=PARTITIONS)
    keys = [f"key-{n}".encode() for n in range(200)] + [b"", b"\x00\xff\x80", "é".encode()]
    _produce_keyed(kafka_broker.bootstrap, topic, keys, partitioner="murmur2_random")
    messages = read_messages(kafka_broker.bootstrap, topic, len(keys))
    assert len(messages) == len(keys)
    _assert_java_placement(messages)


JAVA_PARTITIONS = """import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Utils;

public class JavaPartitions {
    public static void main(String[] args) throws Exception {
        int partitions = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        for (String line; (line = in.readLine()) != null; ) {
            byte[] key = line.getBytes(StandardCharsets.UTF_8);
            System.out.println(Utils.toPositive(Utils.murmur2(key)) % partitions);
        }
    }
}
"""


def test_the_harness_agrees_with_kafkas_own_java_partitioner(tmp_path: Path) -> None:
    """The kafka-clients jar the broker runs on: `Utils.toPositive(Utils.murmur2(key)) % n`,
    the rule of Java's built-in partitioner for a keyed record."""
    java = shutil.which("java")
    assert java is not None, "the broker runs on Java: it must be on PATH"
    libs = run_build_script("build-kafka.sh")
    source = tmp_path / "JavaPartitions.java"
    source.write_text(JAVA_PARTITIONS)
    keys = [f"key-{n}" for n in range(200)] + CUSTOMERS + ["é", "naïve-ключ"]
    result = subprocess.run(
        [java, "-cp", f"{libs}/*", str(source), str(PARTITIONS)],
        input="\n".join(keys) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        timeout=120,
    )
    java_says = [int(line) for line in result.stdout.split()]
    assert java_says == [java_partition(k.encode(), PARTITIONS) for k in keys]


def test_state_written_before_the_java_partitioner_keeps_the_former_one(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    """Moving a key to another partition under running state would split its aggregate: state
    with stored offsets and no recorded partitioner (what an older runtime left) keeps
    librdkafka's former default, CRC32; new state records murmur2 and keeps it on restart."""
    source = make_topic("orders", partitions=1)
    out = f"by_customer_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(
        ORDERS.format(topic=source)
        + f"CREATE STREAM by_customer WITH (kafka_topic = '{out}', partitions = {PARTITIONS}) "
        "AS SELECT * FROM orders PARTITION BY customer_id;"
    )
    _produce(kafka_broker.bootstrap, source, _orders(len(CUSTOMERS)))
    query_id = uuid.uuid4().hex[:10]
    older = RocksdbStateBackend(tmp_path / "pod-0" / f"state-{query_id}", 64 << 20)
    older.commit({}, {(source, 0): 0})
    older.close()
    query = QueryProcess(sql_file, tmp_path, kafka_broker.bootstrap, query_id).start()
    try:
        messages = read_messages(kafka_broker.bootstrap, out, len(CUSTOMERS))
    finally:
        assert query.stop() == 0
    assert len(messages) == len(CUSTOMERS)
    crc32 = [(m.key(), m.partition()) for m in messages]
    assert all(zlib.crc32(key or b"") % PARTITIONS == p for key, p in crc32)
    assert len(_misplaced(messages)) > len(CUSTOMERS) // 2
    # A new state identity records murmur2, and a restart of it keeps murmur2.
    fresh_id = uuid.uuid4().hex[:10]
    fresh_dir = tmp_path / "fresh"
    fresh_out = f"{out}_fresh"
    fresh_sql = fresh_dir / "query.sql"
    fresh_dir.mkdir()
    fresh_sql.write_text(sql_file.read_text().replace(f"'{out}'", f"'{fresh_out}'"))
    for _ in range(2):
        query = QueryProcess(fresh_sql, fresh_dir, kafka_broker.bootstrap, fresh_id).start()
        assert query.stop() == 0
    _produce(kafka_broker.bootstrap, source, _orders(len(CUSTOMERS)))
    query = QueryProcess(fresh_sql, fresh_dir, kafka_broker.bootstrap, fresh_id).start()
    try:
        messages = read_messages(kafka_broker.bootstrap, fresh_out, 2 * len(CUSTOMERS))
    finally:
        assert query.stop() == 0
    assert len(messages) == 2 * len(CUSTOMERS)
    assert _misplaced(messages) == []
