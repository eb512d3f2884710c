"""Upgrade classification: which SQL edits keep the state layout, and why the others do not."""

from __future__ import annotations

import pytest

from streamhouse_runtime.plan.nodes import PlanNode
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.upgrade import UpgradeKind, classify, state_fingerprint
from streamhouse_runtime.program import load_single_query

pytestmark = pytest.mark.unit

ORDERS = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2),
  status VARCHAR, created_at TIMESTAMP)
  WITH (kafka_topic = 'orders', value_format = 'JSON', timestamp = 'created_at');
"""
TOTALS = (
    "CREATE TABLE totals AS SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total "
    "FROM orders {where} GROUP BY customer_id {having};"
)
WINDOWED = (
    "CREATE STREAM per_minute AS SELECT customer_id, COUNT(*) AS n FROM orders "
    "GROUP BY customer_id, TUMBLE(created_at, INTERVAL '{minutes}' MINUTE);"
)


def plan(query: str) -> PlanNode:
    _, statement = load_single_query(ORDERS + query)
    return plan_statement(statement)


def totals(where: str = "", having: str = "") -> PlanNode:
    return plan(TOTALS.format(where=where, having=having))


def test_filters_and_projections_alone_are_stateless_changes() -> None:
    old = plan("CREATE STREAM big AS SELECT * FROM orders WHERE amount > 1000;")
    new = plan("CREATE STREAM big AS SELECT order_id FROM orders WHERE amount > 10;")
    assert classify(old, new).kind is UpgradeKind.STATELESS
    assert state_fingerprint(new) == ""


def test_a_new_filter_or_having_keeps_the_state() -> None:
    upgrade = classify(totals(), totals("WHERE status = 'paid'", "HAVING COUNT(*) > 2"))
    assert upgrade.kind is UpgradeKind.STATE_COMPATIBLE
    assert state_fingerprint(totals()) == state_fingerprint(totals(having="HAVING SUM(amount) > 0"))


def test_another_aggregate_is_incompatible_and_says_which_operator() -> None:
    changed = plan(TOTALS.format(where="", having="").replace("SUM(amount)", "MAX(amount)"))
    upgrade = classify(totals(), changed)
    assert upgrade.kind is UpgradeKind.STATE_INCOMPATIBLE
    assert "SUM(amount)" in upgrade.reason and "MAX(amount)" in upgrade.reason
    assert state_fingerprint(totals()) != state_fingerprint(changed)


def test_another_window_size_is_incompatible() -> None:
    upgrade = classify(plan(WINDOWED.format(minutes=1)), plan(WINDOWED.format(minutes=5)))
    assert upgrade.kind is UpgradeKind.STATE_INCOMPATIBLE
    assert "60000ms" in upgrade.reason and "300000ms" in upgrade.reason


def test_adding_state_to_a_stateless_query_has_nothing_to_lose() -> None:
    old = plan("CREATE STREAM big AS SELECT * FROM orders WHERE amount > 1000;")
    assert classify(old, totals()).kind is UpgradeKind.STATE_COMPATIBLE


def test_removing_the_state_is_incompatible() -> None:
    new = plan("CREATE STREAM big AS SELECT * FROM orders WHERE amount > 1000;")
    upgrade = classify(totals(), new)
    assert upgrade.kind is UpgradeKind.STATE_INCOMPATIBLE
    assert upgrade.reason.startswith("removes the stateful operator Aggregate")
