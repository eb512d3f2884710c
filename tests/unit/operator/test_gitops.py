"""The Argo CD health checks (Lua, run through lupa) map the statuses the operator writes to
Argo CD's health; the argocd-cm snippet carries the same Lua; the Flux example is well formed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import (
    ConditionStatus,
    ConditionType,
    LifecycleState,
    QueryError,
    StreamQueryStatus,
    set_condition,
)
from tests.harness.argocd import GITOPS, QUERY_HEALTH, SOURCE_HEALTH, health

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def query(status: StreamQueryStatus | None, generation: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{model.GROUP}/{model.VERSION}",
        "kind": model.KIND,
        "metadata": {"name": "q", "namespace": "ns", "generation": generation},
        "spec": {"sql": "..."},
    }
    if status is not None:
        body["status"] = status.as_patch()
    return body


def status(
    state: LifecycleState, ready: bool, degraded: str | None = None, message: str = "1/1 pods ready"
) -> StreamQueryStatus:
    conditions = set_condition(
        [], ConditionType.VALIDATED, ConditionStatus.TRUE, "Valid", "", 1, NOW
    )
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ConditionStatus.TRUE if ready else ConditionStatus.FALSE,
        "Running" if ready else state.value.title(),
        message,
        1,
        NOW,
    )
    conditions = set_condition(
        conditions,
        ConditionType.DEGRADED,
        ConditionStatus.TRUE if degraded else ConditionStatus.FALSE,
        degraded or "Healthy",
        "pod q-0: CrashLoopBackOff after 5 restarts" if degraded else "",
        1,
        NOW,
    )
    return StreamQueryStatus(observed_generation=1, lifecycle_state=state, conditions=conditions)


def test_a_running_ready_query_is_healthy() -> None:
    assert health(QUERY_HEALTH, query(status(LifecycleState.RUNNING, True))) == (
        "Healthy",
        "1/1 pods ready",
    )


@pytest.mark.parametrize(
    "state", [LifecycleState.CREATED, LifecycleState.DEPLOYING, LifecycleState.UPGRADING]
)
def test_a_rollout_is_progressing(state: LifecycleState) -> None:
    found = health(QUERY_HEALTH, query(status(state, False, message="0/2 pods ready")))
    assert found == ("Progressing", f"{state.value}: 0/2 pods ready")


def test_no_status_or_an_older_generation_is_progressing() -> None:
    assert health(QUERY_HEALTH, query(None))[0] == "Progressing"
    stale = health(QUERY_HEALTH, query(status(LifecycleState.RUNNING, True), generation=2))
    assert stale == ("Progressing", "Waiting for the operator to reconcile generation 2")


def test_failed_is_degraded_with_the_error() -> None:
    failed = status(LifecycleState.FAILED, False)
    failed.error = QueryError(code="E102", message="3:56: unknown column 'amout'", line=3)
    assert health(QUERY_HEALTH, query(failed)) == ("Degraded", "3:56: unknown column 'amout'")


def test_a_crash_loop_is_degraded() -> None:
    crashing = status(LifecycleState.DEPLOYING, False, degraded="CrashLoop")
    found = health(QUERY_HEALTH, query(crashing))
    assert found == ("Degraded", "CrashLoop: pod q-0: CrashLoopBackOff after 5 restarts")


def test_suspended_is_suspended() -> None:
    assert health(QUERY_HEALTH, query(status(LifecycleState.SUSPENDED, True)))[0] == "Suspended"


def test_a_catalog_declaration_is_healthy_once_validated() -> None:
    def source(valid: bool | None) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": {"name": "orders", "generation": 1}}
        if valid is not None:
            body["status"] = {
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "Validated",
                        "status": "True" if valid else "False",
                        "reason": "Valid" if valid else "InvalidSQL",
                        "message": "stream orders" if valid else "1:8: error[E001]: ...",
                    }
                ],
            }
        return body

    assert health(SOURCE_HEALTH, source(True)) == ("Healthy", "stream orders")
    assert health(SOURCE_HEALTH, source(False)) == ("Degraded", "1:8: error[E001]: ...")
    assert health(SOURCE_HEALTH, source(None))[0] == "Progressing"


def test_the_argocd_configmap_carries_the_same_lua() -> None:
    configmap = yaml.safe_load((GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    data = configmap["data"]
    assert data["resource.customizations.health.streamhouse.io_StreamQuery"] == (
        QUERY_HEALTH.read_text()
    )
    assert data["resource.customizations.health.streamhouse.io_StreamSource"] == (
        SOURCE_HEALTH.read_text()
    )


def test_the_flux_example_health_checks_stream_queries() -> None:
    documents = list(yaml.safe_load_all((GITOPS / "flux" / "kustomization.yaml").read_text()))
    kustomization = next(d for d in documents if d and d["kind"] == "Kustomization")
    checks = kustomization["spec"]["healthChecks"]
    assert checks and {c["kind"] for c in checks} == {model.KIND}
    assert {c["apiVersion"] for c in checks} == {f"{model.GROUP}/{model.VERSION}"}
    assert kustomization["spec"]["sourceRef"]["name"] == documents[0]["metadata"]["name"]
