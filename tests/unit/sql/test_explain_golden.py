"""Every statement of the design document validates, and its EXPLAIN matches a golden file.

Regenerate the golden files after an intended plan change with
`STREAMHOUSE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/sql/test_explain_golden.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streamhouse_runtime.plan.explain import explain_json, explain_text, summary
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
DESIGN = REPO / "examples" / "sql" / "design.sql"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("STREAMHOUSE_UPDATE_GOLDEN") == "1"

PERSISTENT = [
    "high_value_orders",
    "order_summary",
    "orders_with_fee",
    "order_counts",
    "avg_order_value",
    "user_sessions",
    "customer_totals",
    "enriched_orders",
    "order_shipments",
    "full_order_details",
    "potential_fraud",
    "suspicious_logins",
    "anomalies",
]


def _program_plans() -> dict[str, str]:
    program = analyze(DESIGN.read_text())
    return {
        s.name: explain_text(plan_statement(s))
        for s in program.persistent_queries
        if s.name is not None
    }


def test_every_design_query_validates_and_plans() -> None:
    assert list(_program_plans()) == PERSISTENT


@pytest.mark.parametrize("name", PERSISTENT)
def test_explain_matches_golden(name: str) -> None:
    text = _program_plans()[name]
    golden = GOLDEN / f"{name}.explain.txt"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text(), f"plan of {name} changed; see module docstring"


def test_explain_is_deterministic_across_runs() -> None:
    assert _program_plans() == _program_plans()


def test_plan_shapes_of_key_examples() -> None:
    program = analyze(DESIGN.read_text())
    shapes = {s.name: summary(plan_statement(s)) for s in program.persistent_queries if s.name}
    assert shapes["high_value_orders"] == "Source -> Filter -> Project -> Sink"
    assert shapes["order_counts"] == (
        "Source -> Project -> Repartition -> WindowAggregate -> Project -> Sink"
    )
    assert shapes["enriched_orders"] == (
        "Source -> Repartition -> Source -> StreamTableJoin -> Project -> Sink"
    )
    assert shapes["suspicious_logins"] == (
        "Source -> Repartition -> MatchRecognize -> Project -> Sink"
    )
    assert shapes["anomalies"] == (
        "Source -> Repartition -> OverAggregate -> Filter -> Project -> Sink"
    )


def test_window_defaults_and_types_in_the_plan() -> None:
    program = analyze(DESIGN.read_text())
    by_name = {s.name: s for s in program.persistent_queries}
    counts = by_name["order_counts"].query
    assert counts is not None and counts.window is not None
    assert (counts.window.kind.value, counts.window.size_ms, counts.emit.value) == (
        "TUMBLING",
        300_000,
        "FINAL",
    )
    hop = by_name["avg_order_value"].query
    assert hop is not None and hop.window is not None
    assert (hop.window.slide_ms, hop.window.size_ms) == (60_000, 600_000)
    fee = by_name["orders_with_fee"].query
    assert fee is not None
    assert [(n, str(e.type)) for n, e in fee.select] == [
        ("order_id", "BIGINT"),
        ("amount", "DECIMAL(10,2)"),
        ("processing_fee", "DECIMAL(12,4)"),
        ("total", "DECIMAL(13,4)"),
    ]


def test_explain_json_has_the_same_tree() -> None:
    program = analyze(DESIGN.read_text())
    statement = program.persistent_queries[0]
    document = explain_json(plan_statement(statement))
    assert document["operator"] == "Sink"
    assert document["inputs"][0]["operator"] == "Project"
    assert json.loads(json.dumps(document)) == document


def test_the_design_documents_rust_udf_is_refused_with_a_clear_error() -> None:
    text = (
        "CREATE FUNCTION detect_fraud(amount DECIMAL, velocity INT)\n"
        "  RETURNS BOOLEAN\n  LANGUAGE RUST\n  AS 'fraud_detection.so';"
    )
    with pytest.raises(SqlValidationError) as raised:
        analyze(text)
    error = raised.value.errors[0]
    assert error.code.value == "E404"
    assert "LANGUAGE PYTHON AS 'module:callable'" in error.message
