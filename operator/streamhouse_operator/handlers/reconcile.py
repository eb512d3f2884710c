"""Reconcile a StreamQuery: validate its SQL with the runtime's own front end, decide how a
changed SQL treats the state, then create or update its children, writing intent to status
before touching them, and report what the cluster and the pods show.

Idempotent: the same spec applied twice changes nothing (server-side apply), and a reconcile
cut short (an operator restart) converges when it runs again, because every identity it
derives is a function of the uid, the SQL and the identities status recorded for the children
as last applied. An invalid
spec or SQL never raises out of the handler (no retry storm, no crash loop): it is reported as
lifecycle FAILED with a Validated=False condition that carries the `line:column` error.

Upgrades (a changed SQL, compared with `status.lastReconciledSpec`, the spec the children run):
- `last-state` keeps the consumer group and the state; a state-incompatible change is refused
  (FAILED, Degraded=True with the reason) and nothing is touched: the old query keeps running.
- `stateless` keeps the consumer group but gives the state a new identity (new internal topics
  and state directory): the new query starts with empty state where the old one left off.
- `reset` gives both a new identity: empty state, reprocessing from the earliest offset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from streamhouse_operator.builders import (
    METRICS_PORT,
    QueryContext,
    get_configmap,
    get_network_policy,
    get_pod_disruption_budget,
    get_service,
    get_service_monitor,
    get_statefulset,
    query_id,
    replicas,
    selector_string,
    successor_id,
)
from streamhouse_operator.handlers.catalog import namespace_catalog, output_source
from streamhouse_operator.kube import Kube
from streamhouse_operator.live import LiveFigures, Scraper, pod_metrics_urls
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models import streamsource as catalog_model
from streamhouse_operator.models.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    LifecycleState,
    QueryError,
    StreamQueryStatus,
    format_watermark,
    get_condition,
    set_condition,
)
from streamhouse_operator.policy import Policy
from streamhouse_runtime.plan.explain import explain_text, summary
from streamhouse_runtime.plan.nodes import PlanNode
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.upgrade import Upgrade, UpgradeKind, classify, state_fingerprint
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.declarations import prelude, referenced_names
from streamhouse_runtime.sql.errors import ErrorCode, SqlValidationError

log = logging.getLogger(__name__)

CRASH_LOOP_REASONS = frozenset({"CrashLoopBackOff", "Error", "ImagePullBackOff", "ErrImagePull"})


def involved_object(name: str, namespace: str, uid: str) -> dict[str, str]:
    """The StreamQuery as an event's involvedObject."""
    return {
        "apiVersion": f"{model.GROUP}/{model.VERSION}",
        "kind": model.KIND,
        "name": name,
        "namespace": namespace,
        "uid": uid,
    }


def announce(
    kube: Kube,
    involved: Mapping[str, str],
    before: str | None,
    after: StreamQueryStatus,
    reason: str,
    message: str,
) -> None:
    """A Kubernetes event when the lifecycle state changes (Warning into FAILED)."""
    state = after.lifecycle_state
    if state is None or before == state.value:
        return
    warning = state is LifecycleState.FAILED
    text = f"{before or 'new'} -> {state.value}" + (f": {message}" if message else "")
    kube.post_event(dict(involved), "Warning" if warning else "Normal", reason, text)


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


@dataclass(frozen=True)
class Identity:
    """Consumer group and state identities for a spec, and the upgrade, if any."""

    query_id: str
    state_id: str
    upgrade: Upgrade | None = None
    refused: bool = False


def _plan_of(sql: str, compatibility: Compatibility) -> PlanNode | None:
    """The plan of SQL the children run (None if it no longer plans)."""
    try:
        return plan_statement(load_single_query(sql, compatibility=compatibility)[1])
    except SqlValidationError:
        return None


def identity(
    uid: str,
    spec: model.StreamQuerySpec,
    plan: PlanNode,
    status: Mapping[str, Any],
) -> Identity:
    """Which consumer group and state this spec runs with (see the module docstring).

    `status.queryId` and `stateId` are those of the children as last applied (written after
    applying, never with the intent), so the identities derived from them stay the same
    however many times a reconcile is cut short and repeated."""
    current_query = status.get("queryId") or query_id(uid)
    current_state = status.get("stateId") or current_query
    unchanged = Identity(current_query, current_state)
    previous = status.get("lastReconciledSpec")
    if not previous:
        return unchanged
    try:
        old_spec = model.spec_from_json(previous)
    except (ValidationError, ValueError):
        return unchanged  # unreadable record: nothing to compare with
    old_sql = old_spec.sql
    if old_sql == spec.sql and old_spec.compatibility is spec.compatibility:
        return unchanged  # the periodic re-check: no planning of the old SQL
    # Another compatibility mode renames columns and changes keys: compared like an SQL change.
    old_plan = _plan_of(old_sql, old_spec.compatibility)
    upgrade = (
        classify(old_plan, plan)
        if old_plan is not None
        else Upgrade(UpgradeKind.STATE_INCOMPATIBLE, "the running SQL no longer plans")
    )
    mode = spec.upgrade_mode
    if mode is model.UpgradeMode.RESET:
        fresh = successor_id(uid, "query", current_query, spec.sql)
        return Identity(fresh, fresh, upgrade)
    if mode is model.UpgradeMode.STATELESS:
        if upgrade.kind is UpgradeKind.STATELESS:
            return Identity(current_query, current_state, upgrade)
        return Identity(current_query, successor_id(uid, "state", current_state, spec.sql), upgrade)
    refused = upgrade.kind is UpgradeKind.STATE_INCOMPATIBLE
    return Identity(current_query, current_state, upgrade, refused)


def _refused(
    kube: Kube,
    name: str,
    namespace: str,
    generation: int,
    status: Mapping[str, Any],
    upgrade: Upgrade,
    now: datetime,
) -> StreamQueryStatus:
    """A state-incompatible change under last-state: say why, touch nothing."""
    message = (
        f"state-incompatible SQL change refused under upgradeMode last-state: the new query "
        f"{upgrade.reason}. The query keeps running its previous SQL; revert the change, or set "
        "upgradeMode to stateless (empty state, same input position) or reset (empty state, "
        "reprocess from the earliest offset)"
    )
    error = QueryError(code="STATE_INCOMPATIBLE", message=message, field="spec.sql")
    conditions = _conditions(status)
    for kind, value in (
        (ConditionType.VALIDATED, ConditionStatus.TRUE),
        (ConditionType.READY, ConditionStatus.FALSE),
        (ConditionType.PROGRESSING, ConditionStatus.FALSE),
        (ConditionType.DEGRADED, ConditionStatus.TRUE),
    ):
        conditions = set_condition(
            conditions, kind, value, "UpgradeRefused", message, generation, now
        )
    statefulset = kube.get("apps/v1", "StatefulSet", name, namespace) or {}
    observed = statefulset.get("status") or {}
    return StreamQueryStatus(
        observed_generation=generation,
        lifecycle_state=LifecycleState.FAILED,
        conditions=conditions,
        replicas=int(observed.get("replicas") or 0),
        ready_replicas=int(observed.get("readyReplicas") or 0),
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
    scraper: Scraper | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> StreamQueryStatus:
    """Bring the children in line with the spec; returns the status to write. Every
    lifecycle transition (and a refused upgrade) is also posted as a Kubernetes event.

    `policy` is the administrator's (default: only the operator's own image repository, no
    service account but the default): a spec it refuses is FAILED, Validated=False with
    reason PolicyViolation, and nothing is deployed or changed."""
    now = now or datetime.now(UTC)
    involved = involved_object(name, namespace, uid)
    before = status.get("lifecycleState")
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = "spec." + ".".join(str(part) for part in first["loc"])
        error = QueryError(code="INVALID_SPEC", message=first["msg"], field=field)
        failed = _failed(status, generation, error, "InvalidSpec", now)
        announce(kube, involved, before, failed, "InvalidSpec", f"{field}: {first['msg']}")
        return failed
    chosen = policy or Policy.from_env(image, {})
    violation = chosen.violation(parsed)
    if violation is not None:
        error = QueryError(
            code=violation.code.value, message=violation.message, field=violation.field
        )
        failed = _failed(status, generation, error, "PolicyViolation", now)
        announce(kube, involved, before, failed, "PolicyViolation", violation.render())
        return failed
    # Names the SQL does not declare resolve against the namespace's StreamSource objects.
    catalog = namespace_catalog(kube, namespace)
    try:
        program, statement = load_single_query(
            parsed.sql,
            catalog.sources,
            udf_directory_mounted=parsed.udfs is not None,
            compatibility=parsed.compatibility,
        )
    except SqlValidationError as invalid:
        sql_error = invalid.errors[0]
        error = QueryError(
            code=sql_error.code.value,
            message=f"{sql_error.line}:{sql_error.column}: {sql_error.message}",
            line=sql_error.line,
            column=sql_error.column,
            field="spec.sql",
        )
        failed = _failed(status, generation, error, "InvalidSQL", now)
        reads_catalog = bool(referenced_names(parsed.sql) & set(catalog.sources)) or bool(
            status.get("catalogSources")
        )
        if reads_catalog and status.get("lastReconciledSpec"):
            # A catalog change broke a query that runs: it keeps running what it ran.
            message = (
                f"error[{ErrorCode.CATALOG_INCOMPATIBLE.value}]: the catalog no longer fits "
                f"the query ({error.message}); it keeps running its previous SQL"
            )
            failed.conditions = set_condition(
                failed.conditions,
                ConditionType.DEGRADED,
                ConditionStatus.TRUE,
                "CatalogIncompatible",
                message,
                generation,
                now,
            )
            failed.catalog_sources = status.get("catalogSources")
        announce(
            kube, involved, before, failed, "InvalidSQL", f"error[{error.code}] {error.message}"
        )
        return failed

    used = sorted(program.catalog.shared_used)
    if used:
        # What the pods run stands alone: the declarations it reads, then its own SQL. The
        # upgrade check compares this text, so a changed declaration is a changed query.
        effective = prelude(catalog.sources, used) + parsed.sql
        parsed = parsed.model_copy(update={"sql": effective})
    plan = plan_statement(statement)
    ids = identity(uid, parsed, plan, status)
    if ids.refused:
        assert ids.upgrade is not None
        refused = _refused(kube, name, namespace, generation, status, ids.upgrade, now)
        already = (status.get("error") or {}).get("code") == "STATE_INCOMPATIBLE"
        if not already or status.get("observedGeneration") != generation:
            assert refused.error is not None
            kube.post_event(dict(involved), "Warning", "UpgradeRefused", refused.error.message)
        announce(kube, involved, before, refused, "UpgradeRefused", "")
        return refused
    context = QueryContext(
        name=name,
        namespace=namespace,
        uid=uid,
        spec=parsed,
        image=image,
        generation=generation,
        query_id=ids.query_id,
        state_id=ids.state_id,
        plan_text=explain_text(plan),
        plan_summary=summary(plan),
        plan_fingerprint=state_fingerprint(plan),
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
    conditions = set_condition(
        conditions, ConditionType.DEGRADED, ConditionStatus.FALSE, "Healthy", "", generation, now
    )
    # A new spec (or a first or failed attempt) writes its intent before touching anything;
    # the periodic re-check of an already reconciled generation does not, so the state and
    # the conditions' lastTransitionTime stay put while nothing changes.
    rolling = LifecycleState(status.get("lifecycleState") or LifecycleState.DEPLOYING.value)
    new_intent = status.get("observedGeneration") != generation or rolling in (
        LifecycleState.CREATED,
        LifecycleState.FAILED,
    )
    if new_intent:
        rolling = LifecycleState.UPGRADING if ids.upgrade else LifecycleState.DEPLOYING
        action = (
            f"upgrading ({ids.upgrade.kind.value}: {ids.upgrade.reason})"
            if ids.upgrade
            else "applying the ConfigMap, Service, StatefulSet and PodDisruptionBudget"
        )
        conditions = set_condition(
            conditions,
            ConditionType.PROGRESSING,
            ConditionStatus.TRUE,
            "Upgrading" if ids.upgrade else "Applying",
            action,
            generation,
            now,
        )
        intent = StreamQueryStatus(
            observed_generation=status.get("observedGeneration"),
            lifecycle_state=rolling,
            conditions=conditions,
            plan_summary=context.plan_summary,
            plan_fingerprint=context.plan_fingerprint,
        )
        kube.patch_status(name, namespace, intent.as_patch())  # intent first, then act
        announce(kube, involved, before, intent, rolling.value.title(), action)
        before = rolling.value

    statefulset = get_statefulset(context)
    stopping = _stop_for_handoff(kube, statefulset)
    # While the old pods stop, they keep their SQL: the ConfigMap changes with the new pods.
    children = [get_service(context), get_pod_disruption_budget(context)]
    # The NetworkPolicy goes before the StatefulSet, so no pod runs unrestricted for a moment.
    network_policy = get_network_policy(context)
    if chosen.network_policy(parsed):
        children.append(network_policy)
    else:  # turned off (or never on): none left behind
        kube.delete(network_policy["apiVersion"], network_policy["kind"], name, namespace)
    if not stopping:
        children = [get_configmap(context), *children, statefulset]
    for manifest in children:
        kube.apply(manifest)
    if kube.has_kind("monitoring.coreos.com/v1", "ServiceMonitor"):
        kube.apply(get_service_monitor(context))
    sink = statement.sink
    if sink is not None and kube.has_kind(catalog_model.API_VERSION, catalog_model.KIND):
        registered = output_source(name, namespace, uid, sink)
        if registered is not None:
            kube.apply(registered)  # other queries read the output by name
    observed = observe(
        kube,
        context,
        conditions,
        rolling,
        sink.topic if sink is not None else None,
        scraper,
        now,
    )
    identities = {*status.get("identities", []), context.query_id, context.state_id}
    observed.identities = sorted(identities)
    observed.catalog_sources = used or None
    ready = get_condition(observed.conditions, ConditionType.READY)
    announce(
        kube,
        involved,
        before,
        observed,
        observed.lifecycle_state.value.title() if observed.lifecycle_state else "Observed",
        ready.message if ready else "",
    )
    return observed


# Pod settings that decide which pod handles which partition, with which state and group.
HANDOFF_SETTINGS = ("STREAMHOUSE_REPLICAS", "STREAMHOUSE_QUERY_ID", "STREAMHOUSE_STATE_ID")


def handoff_settings(statefulset: Mapping[str, Any]) -> dict[str, str]:
    """The HANDOFF_SETTINGS of a StatefulSet's pod template."""
    template = ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: dict[str, str] = {}
    for container in template.get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") in HANDOFF_SETTINGS and "value" in variable:
                found[variable["name"]] = str(variable["value"])
    return found


def _stop_for_handoff(kube: Kube, desired: Mapping[str, Any]) -> bool:
    """A new parallelism moves partitions between pods, and a new query or state identity
    moves them to other topics and state: no old pod may still run when a new one starts (a
    rolling update would let both handle a partition for a while). The first reconcile scales
    the old StatefulSet to zero; once its pods are gone the new one is applied (the timer
    comes back). Returns whether the old pods are still being stopped."""
    metadata = desired["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    current = kube.get("apps/v1", "StatefulSet", name, namespace)
    if current is None or handoff_settings(current) == handoff_settings(desired):
        return False
    if int((current.get("spec") or {}).get("replicas") or 0) > 0:
        log.info("stopping %s/%s before its partitions change hands", namespace, name)
        kube.scale("apps/v1", "StatefulSet", name, namespace, 0)
        return True
    # Terminating pods count: they may still be writing their final checkpoint.
    return bool(kube.list("v1", "Pod", namespace, selector_string(name)))


def _rolled_out(statefulset: Mapping[str, Any], wanted: int) -> tuple[bool, int]:
    """Whether the StatefulSet runs its current template on every wanted pod, all ready."""
    observed = statefulset.get("status") or {}
    ready = int(observed.get("readyReplicas") or 0)
    generation = (statefulset.get("metadata") or {}).get("generation")
    current = (
        generation is not None
        and observed.get("observedGeneration") == generation
        and observed.get("currentRevision") == observed.get("updateRevision")
        and int(observed.get("updatedReplicas") or 0) >= wanted
        and int(observed.get("replicas") or 0) == wanted
    )
    return bool(current and ready >= wanted), ready


def _crash_looping(pods: Sequence[Mapping[str, Any]]) -> str | None:
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in CRASH_LOOP_REASONS:
                name = (pod.get("metadata") or {}).get("name")
                restarts = container.get("restartCount", 0)
                return f"pod {name}: {waiting['reason']} after {restarts} restarts"
    return None


def observe(
    kube: Kube,
    context: QueryContext,
    conditions: list[Condition],
    rolling: LifecycleState,
    output_topic: str | None,
    scraper: Scraper | None,
    now: datetime,
) -> StreamQueryStatus:
    """The status that follows from the StatefulSet, its pods and their metrics as they are."""
    name, namespace, generation = context.name, context.namespace, context.generation
    statefulset = kube.get("apps/v1", "StatefulSet", name, namespace) or {}
    observed = statefulset.get("status") or {}
    wanted = replicas(context.spec)
    done, ready = _rolled_out(statefulset, wanted)
    suspended = context.spec.state is model.QueryState.SUSPENDED
    if suspended:
        state = LifecycleState.SUSPENDED
    elif done and wanted > 0:
        state = LifecycleState.RUNNING
    elif rolling is LifecycleState.UPGRADING:
        state = LifecycleState.UPGRADING
    else:
        state = LifecycleState.DEPLOYING
    pods = kube.list("v1", "Pod", namespace, selector_string(name))
    crash = _crash_looping(pods)
    settled = done and (state is LifecycleState.RUNNING or suspended)
    detail = f"{ready}/{wanted} pods ready" + ("" if done or suspended else ", rolling out")
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ConditionStatus.TRUE if settled else ConditionStatus.FALSE,
        "Running" if state is LifecycleState.RUNNING else state.value.title(),
        detail,
        generation,
        now,
    )
    conditions = set_condition(
        conditions,
        ConditionType.PROGRESSING,
        ConditionStatus.FALSE if settled else ConditionStatus.TRUE,
        "Reconciled" if settled else "WaitingForPods",
        detail,
        generation,
        now,
    )
    conditions = set_condition(
        conditions,
        ConditionType.DEGRADED,
        ConditionStatus.TRUE if crash else ConditionStatus.FALSE,
        "CrashLoop" if crash else "Healthy",
        crash or "",
        generation,
        now,
    )
    live: LiveFigures | None = None
    if scraper is not None and pods:
        live = scraper.figures(context.uid, pod_metrics_urls(pods, METRICS_PORT))
    spec_json = model.spec_json(context.spec)
    return StreamQueryStatus(
        observed_generation=generation,
        lifecycle_state=state,
        conditions=conditions,
        replicas=int(observed.get("replicas") or 0),
        ready_replicas=ready,
        selector=selector_string(name),
        query_id=context.query_id,
        state_id=context.state_id,
        output_topic=output_topic,
        plan_summary=context.plan_summary,
        plan_fingerprint=context.plan_fingerprint,
        last_reconciled_spec=spec_json,
        last_stable_spec=spec_json if state is LifecycleState.RUNNING else None,
        lag=live.lag if live else None,
        input_rate=round(live.input_rate, 1) if live and live.input_rate is not None else None,
        output_rate=round(live.output_rate, 1) if live and live.output_rate is not None else None,
        dead_lettered=live.dead_lettered if live else None,
        watermark=format_watermark(live.watermark_ms) if live and live.watermark_ms else None,
    )
