"""Handler logic without a cluster: upgrade identities, live figures from /metrics text, and
what the finalizer would delete. The same paths run against the real API server and broker in
tests/k8s and tests/e2e."""

from __future__ import annotations

from typing import Any

import pytest

from streamhouse_operator.builders import query_id, successor_id
from streamhouse_operator.cleanup import internal_topics, parse_properties, reason
from streamhouse_operator.handlers.reconcile import identity
from streamhouse_operator.live import Scraper, combine, parse, pod_metrics_urls
from streamhouse_operator.models import streamquery as model
from streamhouse_runtime.plan.nodes import PlanNode
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.upgrade import UpgradeKind
from streamhouse_runtime.program import load_single_query

pytestmark = pytest.mark.unit

UID = "8d3c1f6e-0000-4000-8000-000000000001"
DDL = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2))
  WITH (kafka_topic = 'orders', value_format = 'JSON');
"""
TOTALS = DDL + (
    "CREATE TABLE totals AS SELECT customer_id, COUNT(*) AS n, {agg} AS total "
    "FROM orders {where} GROUP BY customer_id;"
)


def spec(sql: str, mode: str = "last-state") -> model.StreamQuerySpec:
    return model.StreamQuerySpec.model_validate(
        {"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}, "upgradeMode": mode}
    )


def plan(sql: str) -> PlanNode:
    return plan_statement(load_single_query(sql)[1])


def running(sql: str, **status: Any) -> dict[str, Any]:
    """Status of a query whose children run `sql`."""
    return {"lastReconciledSpec": model.spec_json(spec(sql)), **status}


def totals(agg: str = "SUM(amount)", where: str = "") -> str:
    return TOTALS.format(agg=agg, where=where)


def test_a_new_query_and_an_unchanged_sql_keep_their_identity() -> None:
    fresh = identity(UID, spec(totals()), plan(totals()), {})
    assert (fresh.query_id, fresh.state_id, fresh.upgrade) == (query_id(UID), query_id(UID), None)
    same = identity(UID, spec(totals()), plan(totals()), running(totals(), queryId="q1"))
    assert (same.query_id, same.state_id, same.upgrade) == ("q1", "q1", None)


def test_last_state_keeps_state_through_a_compatible_change() -> None:
    new = totals(where="WHERE amount > 0")
    ids = identity(UID, spec(new), plan(new), running(totals(), queryId="q1", stateId="s1"))
    assert (ids.query_id, ids.state_id, ids.refused) == ("q1", "s1", False)
    assert ids.upgrade is not None and ids.upgrade.kind is UpgradeKind.STATE_COMPATIBLE


def test_last_state_refuses_an_incompatible_change() -> None:
    new = totals(agg="MAX(amount)")
    ids = identity(UID, spec(new), plan(new), running(totals(), queryId="q1"))
    assert ids.refused
    assert ids.upgrade is not None and "MAX(amount)" in ids.upgrade.reason


def test_stateless_mode_starts_empty_state_where_the_group_left_off() -> None:
    new = totals(agg="MAX(amount)")
    ids = identity(UID, spec(new, "stateless"), plan(new), running(totals(), queryId="q1"))
    assert (ids.query_id, ids.refused) == ("q1", False)
    assert ids.state_id == successor_id(UID, "state", "q1", new) != "q1"


def test_reset_mode_gives_group_and_state_a_new_identity() -> None:
    new = totals(where="WHERE amount > 0")
    before = running(totals(), queryId="q1")
    ids = identity(UID, spec(new, "reset"), plan(new), before)
    assert ids.query_id == ids.state_id == successor_id(UID, "query", "q1", new) != "q1"


def test_a_repeated_or_later_reconcile_derives_the_same_new_identity() -> None:
    """Status keeps the identities of the children as applied; until the new ones are applied
    (an operator restart, or a further edit that leaves the SQL alone), the same ones come."""
    new = totals(agg="MAX(amount)")
    before = running(totals(), queryId="q1", stateId="s1")
    first = identity(UID, spec(new, "stateless"), plan(new), before)
    again = identity(UID, spec(new, "stateless"), plan(new), dict(before))
    assert again.state_id == first.state_id
    # Back to the old SQL later: a new identity again, never the old state revived.
    applied = running(new, queryId="q1", stateId=first.state_id)
    back = identity(UID, spec(totals(), "stateless"), plan(totals()), applied)
    assert back.state_id not in ("s1", first.state_id)


POD_METRICS = """
# TYPE streamhouse_records_in_total counter
streamhouse_records_in_total{topic="orders"} 1200.0
streamhouse_records_in_total{topic="streamhouse-abc-groupby"} 1200.0
# TYPE streamhouse_records_out_total counter
streamhouse_records_out_total{topic="totals"} 300.0
streamhouse_records_out_total{topic="streamhouse-abc-groupby"} 1200.0
# TYPE streamhouse_dead_letter_records_total counter
streamhouse_dead_letter_records_total 2.0
# TYPE streamhouse_consumer_lag gauge
streamhouse_consumer_lag{partition="0",topic="orders"} 40.0
streamhouse_consumer_lag{partition="0",topic="streamhouse-abc-groupby"} 5.0
# TYPE streamhouse_watermark_ms gauge
streamhouse_watermark_ms {watermark}
"""


def pod(watermark: int) -> str:
    return POD_METRICS.replace("{watermark}", str(watermark))


def test_pod_metrics_sum_over_pods_with_the_lowest_watermark() -> None:
    figures = combine([parse(pod(1_700_000_060_000)), parse(pod(1_700_000_000_000))])
    assert figures is not None
    assert (figures.pods, figures.lag, figures.dead_lettered) == (2, 90, 4)
    assert (figures.records_in, figures.records_out) == (2400, 600)
    assert figures.watermark_ms == 1_700_000_000_000
    assert combine([]) is None


def test_rates_come_from_the_change_between_two_scrapes() -> None:
    scraper = Scraper()
    first = combine([parse(pod(1))])
    assert first is not None
    assert scraper.with_rates("q", first, now=100.0).input_rate is None
    later = combine([parse(pod(1).replace("1200.0", "1700.0").replace("300.0", "400.0"))])
    assert later is not None
    rated = scraper.with_rates("q", later, now=110.0)
    assert (rated.input_rate, rated.output_rate) == (50.0, 10.0)
    restarted = combine([parse(pod(1))])  # counters began again
    assert restarted is not None
    assert scraper.with_rates("q", restarted, now=120.0).input_rate is None


def test_only_running_pods_with_an_ip_are_scraped() -> None:
    pods = [
        {"status": {"phase": "Running", "podIP": "10.0.0.7"}},
        {"status": {"phase": "Pending"}},
        {"status": {"phase": "Running"}},
    ]
    assert pod_metrics_urls(pods, 9090) == ["http://10.0.0.7:9090/metrics"]


def test_the_finalizer_deletes_internal_topics_of_every_identity_but_not_dead_letters() -> None:
    topics = [
        "orders",
        "totals",
        "streamhouse-q1-groupby",
        "streamhouse-q1-stage-1-changelog",
        "streamhouse-q1-dlq",
        "streamhouse-s2-stage-1-changelog",
        "streamhouse-other-stage-1-changelog",
    ]
    assert internal_topics(topics, ["q1", "s2"]) == [
        "streamhouse-q1-groupby",
        "streamhouse-q1-stage-1-changelog",
        "streamhouse-s2-stage-1-changelog",
    ]


def test_client_properties_are_read_like_the_pods_read_them() -> None:
    text = "# SASL\nsecurity.protocol=SASL_SSL\nsasl.password = s3=cret\n\n!note\n"
    assert parse_properties(text) == {"security.protocol": "SASL_SSL", "sasl.password": "s3=cret"}


def test_kafka_errors_are_logged_by_name_never_by_message() -> None:
    from confluent_kafka import KafkaError, KafkaException

    secret = KafkaException(KafkaError(KafkaError._INVALID_ARG, 'Invalid value "s3cret"'))
    assert reason(secret) == "_INVALID_ARG"
    assert reason(ValueError("s3cret")) == "ValueError"


def test_a_changed_compatibility_mode_is_compared_like_an_sql_change() -> None:
    ksqldb = model.StreamQuerySpec.model_validate(
        {**spec(totals()).model_dump(by_alias=True), "compatibility": "ksqldb"}
    )
    new_plan = plan_statement(load_single_query(totals(), compatibility=ksqldb.compatibility)[1])
    ids = identity(UID, ksqldb, new_plan, running(totals(), queryId="q1"))
    assert ids.upgrade is not None  # not the periodic re-check of an unchanged spec
    assert ids.refused  # last-state: the names and keys of the state change
