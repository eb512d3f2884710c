"""Aggregating a TABLE on the real broker: a table topic with updates and tombstones, the
query process killed and started again in between, then started on an empty volume (the
state rebuilt from the changelogs); the result table is the aggregate of the table's final
rows (each change retracted once, never twice, across the restarts)."""

from __future__ import annotations

import json
import shutil
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

REGIONS = ("eu", "us", "apac", "latam")


def _sql(source: str, output: str) -> str:
    return (
        "CREATE TABLE users (id VARCHAR PRIMARY KEY, region VARCHAR, age BIGINT) "
        f"WITH (kafka_topic = '{source}', value_format = 'JSON');\n"
        f"CREATE TABLE by_region WITH (kafka_topic = '{output}') AS SELECT region, "
        "COUNT(*) AS n, SUM(age) AS total, MIN(age) AS youngest, MAX(age) AS oldest "
        "FROM users GROUP BY region;"
    )


def _changes(start: int, count: int) -> list[tuple[str, dict[str, Any] | None]]:
    """Updates that move users between regions, and tombstones (every 7th change)."""
    changes: list[tuple[str, dict[str, Any] | None]] = []
    for step in range(start, start + count):
        user = f"u{step % 37}"
        if step % 7 == 3:
            changes.append((user, None))
        else:
            changes.append((user, {"region": REGIONS[(step * 5) % 4], "age": 18 + step % 61}))
    return changes


def _produce(bootstrap: str, topic: str, changes: list[tuple[str, dict[str, Any] | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for user, row in changes:
        producer.produce(topic, json.dumps(row).encode() if row is not None else None, user)
    assert producer.flush(60) == 0


def _expected(changes: list[tuple[str, dict[str, Any] | None]]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any] | None] = {}
    for user, row in changes:
        rows[user] = row
    ages: dict[str, list[int]] = {}
    for row in rows.values():
        if row is not None:
            ages.setdefault(row["region"], []).append(row["age"])
    return {
        region: {
            "region": region,
            "n": len(values),
            "total": sum(values),
            "youngest": min(values),
            "oldest": max(values),
        }
        for region, values in ages.items()
    }


def _table(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """The result table: the last value per key of the output topic, tombstones deleting."""
    table: dict[str, dict[str, Any]] = {}
    for message in read_messages(bootstrap, topic, 1_000_000, timeout_s=3):
        key = (message.key() or b"").decode()
        value = message.value()
        if value is None:
            table.pop(key, None)
        else:
            table[key] = json.loads(value)
    return table


def test_a_table_aggregate_retracts_updates_and_tombstones_across_a_restart(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    source = make_topic("users", partitions=3)
    out = f"by_region_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(_sql(source, out))
    query_id = uuid.uuid4().hex[:10]
    first_changes = _changes(0, 300)
    _produce(bootstrap, source, first_changes)
    first = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start()
    try:
        wait_until(lambda: _table(bootstrap, out) == _expected(first_changes), 60, "first results")
    finally:
        first.kill()  # no final checkpoint: the restart re-processes what followed the last

    later_changes = _changes(300, 200)  # moves and deletes rows the first process saw
    _produce(bootstrap, source, later_changes)
    second = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start()
    try:
        expected = _expected(first_changes + later_changes)
        wait_until(lambda: _table(bootstrap, out) == expected, 60, "results after the restart")
    finally:
        assert second.stop() == 0
    assert len(expected) == len(REGIONS)

    shutil.rmtree(tmp_path / "pod-0")  # the volume is gone: the previous rows come back
    last_changes = _changes(500, 150)  # from the changelogs, or these retract nothing
    _produce(bootstrap, source, last_changes)
    third = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start()
    try:
        expected = _expected(first_changes + later_changes + last_changes)
        wait_until(lambda: _table(bootstrap, out) == expected, 60, "results after the restore")
    finally:
        third.stop()
    log = (tmp_path / "runtime-0.log").read_text()
    assert "restored stage-0 partition 0" in log and "restored stage-1 partition 2" in log
