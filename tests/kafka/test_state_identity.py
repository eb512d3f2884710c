"""STREAMHOUSE_STATE_ID: a new state identity starts with empty state (new internal topics and
state folder) where the consumer group left off, which is what upgradeMode stateless needs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import latest_totals, order, produce, totals_sql

pytestmark = pytest.mark.kafka


def test_a_new_state_id_starts_empty_where_the_group_left_off(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    source = make_topic("orders", partitions=2)
    out = f"totals_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(totals_sql(source, out))
    query_id, new_state = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
    keys = [b"%d" % i for i in range(130)]
    produce(bootstrap, source, [order(i, "1", "c1") for i in range(100)], keys[:100])
    first = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start()
    try:
        wait_until(
            lambda: latest_totals(bootstrap, out).get("c1") == (100, Decimal(100)), 60, "100"
        )
    finally:
        assert first.stop() == 0

    produce(bootstrap, source, [order(i, "2", "c1") for i in range(100, 130)], keys[100:])
    second = QueryProcess(
        sql_file, tmp_path, bootstrap, query_id, extra_env={"STREAMHOUSE_STATE_ID": new_state}
    ).start()
    try:
        wait_until(
            lambda: latest_totals(bootstrap, out).get("c1") == (30, Decimal(60)), 60, "fresh"
        )
        consumed = second.metric(f'streamhouse_records_in_total{{topic="{source}"')
    finally:
        assert second.stop() == 0
    assert consumed == 30, "the group's committed offsets are kept"
    folders = sorted(p.name for p in (tmp_path / "pod-0").iterdir())
    assert folders == [f"state-{new_state}"], "the old state's folder is deleted"
    topics = kafka_broker.admin().list_topics(timeout=10).topics
    assert f"streamhouse-{new_state}-groupby" in topics
    assert f"streamhouse-{new_state}-stage-1-changelog" in topics


def test_state_of_other_stateful_operators_is_refused_without_a_crash_loop(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    source = make_topic("orders", partitions=1)
    out = f"totals_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(totals_sql(source, out))
    query_id = uuid.uuid4().hex[:10]
    produce(bootstrap, source, [order(i, "1", "c1") for i in range(10)])
    first = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start()
    try:
        wait_until(lambda: latest_totals(bootstrap, out).get("c1") == (10, Decimal(10)), 60, "sum")
    finally:
        assert first.stop() == 0

    sql_file.write_text(totals_sql(source, out, "MAX"))  # same state, other operators
    second = QueryProcess(sql_file, tmp_path, bootstrap, query_id).start(wait_ready=False)
    try:
        wait_until(lambda: second.probe("/readyz")[0] == 503, 60, "refusal")
        assert "written by a query with other stateful operators" in second.probe("/readyz")[1]
        time.sleep(2)
        assert second.probe("/healthz")[0] == 200, "alive: no crash loop"
        assert second.process is not None and second.process.poll() is None
    finally:
        second.stop()
