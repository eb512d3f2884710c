"""The operator's own metrics count reconciles, errors, durations and queries per state."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from streamhouse_operator.metrics import OperatorMetrics
from streamhouse_operator.models.status import LifecycleState

pytestmark = pytest.mark.unit


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_queries_are_counted_per_lifecycle_state_and_forgotten_on_delete() -> None:
    metrics = OperatorMetrics()
    metrics.observed("a", "q1", LifecycleState.DEPLOYING, ready=False)
    metrics.observed("a", "q2", LifecycleState.RUNNING, ready=True)
    metrics.observed("a", "q1", LifecycleState.RUNNING, ready=True)
    assert sample(metrics, "streamhouse_operator_queries", lifecycle_state="RUNNING") == 2
    assert sample(metrics, "streamhouse_operator_queries", lifecycle_state="DEPLOYING") == 0
    assert sample(metrics, "streamhouse_operator_reconciles_total", lifecycle_state="RUNNING") == 2
    assert sample(metrics, "streamhouse_operator_query_ready", query_namespace="a", query="q1") == 1
    metrics.forget("a", "q1")
    assert sample(metrics, "streamhouse_operator_queries", lifecycle_state="RUNNING") == 1
    assert (
        sample(metrics, "streamhouse_operator_query_ready", query_namespace="a", query="q1") is None
    )


def test_a_reconcile_that_raises_counts_as_an_error_and_is_timed() -> None:
    metrics = OperatorMetrics()
    with metrics.reconciling():
        pass
    with pytest.raises(RuntimeError), metrics.reconciling():
        raise RuntimeError("API server went away")
    assert sample(metrics, "streamhouse_operator_reconcile_errors_total") == 1
    assert sample(metrics, "streamhouse_operator_reconcile_duration_seconds_count") == 2
    assert b"streamhouse_operator_reconcile_duration_seconds_bucket" in generate_latest(
        metrics.registry
    )
