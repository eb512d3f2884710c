"""Outputs the broker refuses never stop a query (against the real broker): a NULL group key
into a compacted topic, an event time past `message.timestamp.after.max.ms`, an output over
`max.message.bytes`, and a refusal that only the broker's delivery report tells (the topic's
limit changed after the pod read it). Each becomes a dead letter of its input record (or is
counted), the other records of the batch are delivered, and a restart writes no dead letter
twice."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import produce, read_all

pytestmark = pytest.mark.kafka

SOURCE = """CREATE STREAM events (id BIGINT, region VARCHAR, amount BIGINT, note VARCHAR,
  at BIGINT) WITH (kafka_topic = '{topic}', value_format = 'JSON', timestamp = 'at');
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _event(
    event_id: int, region: str | None, amount: int = 1, note: str = "", at: int = 0
) -> bytes:
    return json.dumps(
        {"id": event_id, "region": region, "amount": amount, "note": note, "at": at or _now_ms()}
    ).encode()


def _start(
    broker: KafkaBroker, directory: Path, sql: str, dlq: str, query_id: str = ""
) -> QueryProcess:
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    return QueryProcess(
        sql_file,
        directory,
        broker.bootstrap,
        query_id or uuid.uuid4().hex[:10],
        extra_env={"STREAMHOUSE_DEAD_LETTER_TOPIC": dlq},
    ).start()


def _reasons(broker: KafkaBroker, dlq: str, expect: int) -> list[tuple[bytes, dict[str, bytes]]]:
    return [(value, headers) for _, value, headers in read_all(broker.bootstrap, dlq, expect, 30)]


def test_null_group_keys_are_dropped_and_counted_not_a_crash(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("events")
    out = f"{source}-by-region"
    sql = SOURCE.format(topic=source) + (
        f"CREATE TABLE by_region WITH (kafka_topic = '{out}') AS "
        "SELECT region, COUNT(*) AS n FROM events GROUP BY region;"
    )
    produce(
        kafka_broker.bootstrap,
        source,
        [_event(1, "eu"), _event(2, None), b'{"id": 3, "at": 5}', _event(4, "eu"), _event(5, "us")],
    )
    query = _start(kafka_broker, tmp_path, sql, f"{source}-dlq")
    try:
        wait_until(lambda: query.metric("streamhouse_null_key_records_total") == 2, 60, "nulls")
        latest = {}
        for key, value, _ in read_all(kafka_broker.bootstrap, out, 3):
            assert key is not None
            latest[value["region"]] = value["n"]
        assert query.metric("streamhouse_dead_letter_records_total") == 0
        assert query.process is not None and query.process.poll() is None
    finally:
        assert query.stop() == 0
    assert latest == {"eu": 2, "us": 1}


def test_future_event_time_and_oversized_output_are_dead_letters_of_their_record(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("events")
    out = make_topic("small-out", **{"max.message.bytes": "4000"})
    dlq = f"{source}-dlq"
    sql = SOURCE.format(topic=source) + (
        f"CREATE STREAM copied WITH (kafka_topic = '{out}') AS SELECT * FROM events;"
    )
    produce(
        kafka_broker.bootstrap,
        source,
        [
            _event(1, "eu"),
            _event(2, "eu", at=_now_ms() + 2 * 3_600_000),  # past the broker's 1 h
            _event(3, "eu", note="x" * 10_000),  # over the output's max.message.bytes
            _event(4, "eu"),
        ],
    )
    query = _start(kafka_broker, tmp_path, sql, dlq)
    try:
        outputs = read_all(kafka_broker.bootstrap, out, 2)
        dead = _reasons(kafka_broker, dlq, 2)
        assert query.process is not None and query.process.poll() is None
    finally:
        assert query.stop() == 0
    assert sorted(value["ID"] if "ID" in value else value["id"] for _, value, _ in outputs) == [
        1,
        4,
    ]
    by_offset = {headers["streamhouse.error.offset"]: headers for _, headers in dead}
    assert set(by_offset) == {b"1", b"2"}
    assert b"ahead of now" in by_offset[b"1"]["streamhouse.error.reason"]
    assert b"max.message.bytes" in by_offset[b"2"]["streamhouse.error.reason"]
    assert all(h["streamhouse.error.topic"] == source.encode() for h in by_offset.values())


def test_a_refusal_known_only_from_the_delivery_report_is_dead_lettered_once(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("events")
    out = make_topic("out")
    dlq = f"{source}-dlq"
    sql = SOURCE.format(topic=source) + (
        f"CREATE STREAM copied WITH (kafka_topic = '{out}') AS SELECT * FROM events;"
    )
    query_id = uuid.uuid4().hex[:10]
    query = _start(kafka_broker, tmp_path, sql, dlq, query_id)
    try:
        # The pod read the output's limits at start; the topic gets smaller afterwards, so
        # only the broker's answer (a failed delivery report) tells that a record is too big.
        admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            out,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes", "3000", incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=30)
        time.sleep(1)
        produce(
            kafka_broker.bootstrap,
            source,
            # Random text: the broker's limit applies to the compressed batch.
            [_event(1, "eu"), _event(2, "eu", note=os.urandom(6_000).hex()), _event(3, "eu")],
        )
        outputs = read_all(kafka_broker.bootstrap, out, 2)
        dead = _reasons(kafka_broker, dlq, 1)
        wait_until(lambda: query.metric("streamhouse_dead_letter_records_total") == 1, 30, "dlq")
        assert query.process is not None and query.process.poll() is None
    finally:
        assert query.stop() == 0
    assert len(outputs) == 2 and len(dead) == 1
    headers = dead[0][1]
    assert headers["streamhouse.error.offset"] == b"1"
    assert headers["streamhouse.error.topic"] == source.encode()
    assert b"MSG_SIZE_TOO_LARGE" in headers["streamhouse.error.reason"]

    # A restart resumes after the checkpoint: the same dead letter is not written again.
    again = _start(kafka_broker, tmp_path, sql, dlq, query_id)
    try:
        produce(kafka_broker.bootstrap, source, [_event(4, "eu")])
        assert len(read_all(kafka_broker.bootstrap, out, 3)) == 3
        time.sleep(2)
    finally:
        assert again.stop() == 0
    assert len(_reasons(kafka_broker, dlq, 2)) == 1
