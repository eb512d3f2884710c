"""Reconcile a StreamQuery: validate its SQL with the runtime's own front end, then create or
update its children, writing intent to status before touching them.

Idempotent: the same spec applied twice changes nothing (server-side apply). An invalid spec
or SQL never raises out of the handler (no retry storm, no crash loop): it is reported as
lifecycle FAILED with a Validated=False condition that carries the `line:column` error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from streamhouse_operator.builders import (
    QueryContext,
    get_configmap,
    get_pod_disruption_budget,
    get_service,
    get_service_monitor,
    get_statefulset,
    replicas,
    selector_string,
)
from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    LifecycleState,
    QueryError,
    StreamQueryStatus,
    set_condition,
)
from streamhouse_runtime.plan.explain import explain_text, summary
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.errors import SqlValidationError

log = logging.getLogger(__name__)


def _conditions(status: Mapping[str, Any]) -> list[Condition]:
    return [Condition.model_validate(c) for c in status.get("conditions") or []]


def _failed(
    status: Mapping[str, Any], generation: int, error: QueryError, reason: str, now: datetime
) -> StreamQueryStatus:
    conditions = _conditions(status)
    for kind, value in (
        (ConditionType.VALIDATED, ConditionStatus.FALSE),
        (ConditionType.READY, ConditionStatus.FALSE),
        (ConditionType.PROGRESSING, ConditionStatus.FALSE),
    ):
        conditions = set_condition(conditions, kind, value, reason, error.message, generation, now)
    return StreamQueryStatus(
        observed_generation=generation,
        lifecycle_state=LifecycleState.FAILED,
        conditions=conditions,
        error=error,
    )


def reconcile(
    kube: Kube,
    *,
    name: str,
    namespace: str,
    uid: str,
    generation: int,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    image: str,
    now: datetime | None = None,
) -> StreamQueryStatus:
    """Bring the children in line with the spec; returns the status to write."""
    now = now or datetime.now(UTC)
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = "spec." + ".".join(str(part) for part in first["loc"])
        error = QueryError(code="INVALID_SPEC", message=first["msg"], field=field)
        return _failed(status, generation, error, "InvalidSpec", now)
    try:
        _, statement = load_single_query(parsed.sql)
    except SqlValidationError as invalid:
        sql_error = invalid.errors[0]
        error = QueryError(
            code=sql_error.code.value,
            message=f"{sql_error.line}:{sql_error.column}: {sql_error.message}",
            line=sql_error.line,
            column=sql_error.column,
            field="spec.sql",
        )
        return _failed(status, generation, error, "InvalidSQL", now)

    plan = plan_statement(statement)
    context = QueryContext(
        name=name,
        namespace=namespace,
        uid=uid,
        spec=parsed,
        image=image,
        generation=generation,
        plan_text=explain_text(plan),
        plan_summary=summary(plan),
    )
    conditions = set_condition(
        _conditions(status),
        ConditionType.VALIDATED,
        ConditionStatus.TRUE,
        "Valid",
        context.plan_summary,
        generation,
        now,
    )
    # A new spec (or a first or failed attempt) writes its intent before touching anything;
    # the periodic re-check of an already reconciled generation does not, so the state and
    # the conditions' lastTransitionTime stay put while nothing changes.
    new_intent = status.get("observedGeneration") != generation or status.get("lifecycleState") in (
        None,
        LifecycleState.CREATED.value,
        LifecycleState.FAILED.value,
    )
    if new_intent:
        conditions = set_condition(
            conditions,
            ConditionType.PROGRESSING,
            ConditionStatus.TRUE,
            "Applying",
            "applying the ConfigMap, Service, StatefulSet and PodDisruptionBudget",
            generation,
            now,
        )
        intent = StreamQueryStatus(
            observed_generation=status.get("observedGeneration"),
            lifecycle_state=LifecycleState.DEPLOYING,
            conditions=conditions,
            query_id=context.query_id,
            plan_summary=context.plan_summary,
        )
        kube.patch_status(name, namespace, intent.as_patch())  # intent first, then act

    for manifest in (
        get_configmap(context),
        get_service(context),
        get_statefulset(context),
        get_pod_disruption_budget(context),
    ):
        kube.apply(manifest)
    if kube.has_kind("monitoring.coreos.com/v1", "ServiceMonitor"):
        kube.apply(get_service_monitor(context))
    return observe(kube, name, namespace, generation, context, conditions, statement, now)


def observe(
    kube: Kube,
    name: str,
    namespace: str,
    generation: int,
    context: QueryContext,
    conditions: list[Condition],
    statement: Any,
    now: datetime,
) -> StreamQueryStatus:
    """The status that follows from the StatefulSet as it is now."""
    statefulset = kube.get("apps/v1", "StatefulSet", name, namespace) or {}
    observed = statefulset.get("status") or {}
    wanted = replicas(context.spec)
    ready = int(observed.get("readyReplicas") or 0)
    suspended = context.spec.state is model.QueryState.SUSPENDED
    if suspended:
        state = LifecycleState.SUSPENDED
    elif wanted > 0 and ready >= wanted:
        state = LifecycleState.RUNNING
    else:
        state = LifecycleState.DEPLOYING
    running = state in (LifecycleState.RUNNING, LifecycleState.SUSPENDED)
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ConditionStatus.TRUE if running else ConditionStatus.FALSE,
        "Running" if state is LifecycleState.RUNNING else state.value.title(),
        f"{ready}/{wanted} pods ready",
        generation,
        now,
    )
    conditions = set_condition(
        conditions,
        ConditionType.PROGRESSING,
        ConditionStatus.FALSE if running else ConditionStatus.TRUE,
        "Reconciled" if running else "WaitingForPods",
        f"{ready}/{wanted} pods ready",
        generation,
        now,
    )
    sink = statement.sink
    return StreamQueryStatus(
        observed_generation=generation,
        lifecycle_state=state,
        conditions=conditions,
        replicas=int(observed.get("replicas") or 0),
        ready_replicas=ready,
        selector=selector_string(name),
        query_id=context.query_id,
        output_topic=sink.topic if sink is not None else None,
        plan_summary=context.plan_summary,
        last_reconciled_spec=model.spec_json(context.spec),
    )
