"""StreamQuery objects as the API sees them: the only store behind the API.

Everything here blocks (the kubernetes client is synchronous); the server runs it on worker
threads. Validation is the admission webhook's (`handlers/admission.py`), so a POST answers
422 with exactly the `spec.sql:LINE:COL: error[CODE]` line `kubectl apply` prints, and a SQL
change is checked against the operator's upgrade rules (`handlers/reconcile.identity`)
before it is written: a change the operator would refuse is answered 409 and not applied.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiException
from pydantic import ValidationError

from streamhouse_operator.api import schemas
from streamhouse_operator.builders import METRICS_PORT, selector_string
from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.handlers.reconcile import identity
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import StreamQueryStatus
from streamhouse_runtime.plan.explain import explain_json, explain_text, summary
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.errors import SqlValidationError

Obj = dict[str, Any]
WATCH_TIMEOUT_S = 10  # a watch re-opens this often; a stopped stream ends within it


class NotFound(Exception):
    pass


class Conflict(Exception):
    """The change cannot be applied; `problem` says why."""

    def __init__(self, found: schemas.Problem) -> None:
        super().__init__(found.message)
        self.problem = found


class Invalid(Exception):
    """422: the spec or its SQL is refused, as admission refuses it."""

    def __init__(self, problems: list[schemas.Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


# -- SQL ---------------------------------------------------------------------------------


def sql_problems(
    sql: str, where: str, compatibility: Compatibility = Compatibility.DEFAULT
) -> list[schemas.Problem]:
    try:
        load_single_query(sql, compatibility=compatibility)
    except SqlValidationError as invalid:
        return [
            schemas.Problem(
                code=e.code.value,
                message=e.message,
                line=e.line,
                column=e.column,
                field=where,
                rendered=e.render(where),
            )
            for e in invalid.errors
        ]
    return []


def validate_sql(sql: str) -> schemas.ValidateResult:
    errors = sql_problems(sql, "sql")
    if errors:
        return schemas.ValidateResult(valid=False, errors=errors)
    _, statement = load_single_query(sql)
    plan = plan_statement(statement)
    return schemas.ValidateResult(valid=True, kind=_kind(sql), summary=summary(plan))


def explain_sql(sql: str) -> schemas.ExplainResult:
    errors = sql_problems(sql, "sql")
    if errors:
        raise Invalid(errors)
    _, statement = load_single_query(sql)
    plan = plan_statement(statement)
    return schemas.ExplainResult(
        kind=_kind(sql) or "",
        name=statement.name,
        text=explain_text(plan),
        plan=schemas.PlanNode.model_validate(explain_json(plan)),
    )


@functools.lru_cache(maxsize=1024)
def _kind(sql: str) -> str | None:
    """STREAM or TABLE: what the query's sink is (None if the SQL does not validate)."""
    try:
        _, statement = load_single_query(sql)
    except SqlValidationError:
        return None
    return statement.sink.kind.value if statement.sink is not None else None


def spec_problems(spec: Mapping[str, Any]) -> list[schemas.Problem]:
    """Admission's verdict on a spec, as structured problems (empty: admitted)."""
    headline = problem(spec)
    if headline is None:
        return []
    try:
        parsed = model.StreamQuerySpec.model_validate(dict(spec))
    except ValidationError as invalid:
        first = invalid.errors()[0]
        path = "spec." + ".".join(str(p) for p in first["loc"])
        return [
            schemas.Problem(
                code="INVALID_SPEC", message=first["msg"], field=path, rendered=headline
            )
        ]
    found = sql_problems(parsed.sql, "spec.sql", parsed.compatibility)
    if not found:  # admission refused for a reason the SQL front end does not name
        return [schemas.Problem(code="INVALID_SPEC", message=headline, rendered=headline)]
    found[0] = found[0].model_copy(update={"rendered": headline})
    return found


# -- views -------------------------------------------------------------------------------


def view(obj: Mapping[str, Any]) -> schemas.Query:
    metadata = obj.get("metadata") or {}
    raw_spec = obj.get("spec") or {}
    raw_status = obj.get("status") or {}
    spec: model.StreamQuerySpec | dict[str, Any]
    status: StreamQueryStatus | dict[str, Any]
    try:
        spec = model.StreamQuerySpec.model_validate(raw_spec)
    except ValidationError:
        spec = dict(raw_spec)
    try:
        status = StreamQueryStatus.model_validate(raw_status)
    except ValidationError:
        status = dict(raw_status)
    conditions = status.conditions if isinstance(status, StreamQueryStatus) else []
    ready = any(c.type == "Ready" and c.status.value == "True" for c in conditions)
    sql = raw_spec.get("sql")
    return schemas.Query(
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        uid=metadata.get("uid", ""),
        generation=int(metadata.get("generation") or 0),
        created=metadata.get("creationTimestamp"),
        kind=_kind(sql) if isinstance(sql, str) else None,
        lifecycle_state=raw_status.get("lifecycleState"),
        ready=ready,
        replicas=raw_status.get("replicas"),
        ready_replicas=raw_status.get("readyReplicas"),
        conditions=conditions,
        figures=schemas.LiveFigures(
            lag=raw_status.get("lag"),
            input_rate=raw_status.get("inputRate"),
            output_rate=raw_status.get("outputRate"),
            dead_lettered=raw_status.get("deadLettered"),
            watermark=raw_status.get("watermark"),
        ),
        spec=spec,
        status=status,
    )


# -- the store ---------------------------------------------------------------------------


def _api_errors(call: Callable[[], Any]) -> Obj:
    try:
        result: Obj = call()
        return result
    except ApiException as error:
        if error.status == 404:
            raise NotFound(str(error.reason)) from None
        if error.status == 409:
            raise Conflict(
                schemas.Problem(code="ALREADY_EXISTS", message="a query of that name exists")
            ) from None
        if error.status in (400, 422):
            raise Invalid(
                [schemas.Problem(code="REFUSED_BY_API_SERVER", message=_message(error))]
            ) from None
        raise


def _message(error: ApiException) -> str:
    import json

    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return str(error.reason)
    return str(body.get("message") or error.reason)


class QueryStore:
    """StreamQuery objects through the API server (the API's own service account)."""

    def __init__(self, api: client.ApiClient, default_bootstrap: str | None = None) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.default_bootstrap = default_bootstrap

    def list_queries(self, namespace: str, limit: int, token: str | None) -> schemas.QueryList:
        options: dict[str, Any] = {"limit": limit}
        if token:
            options["_continue"] = token
        if namespace:
            body = _api_errors(
                lambda: self.custom.list_namespaced_custom_object(
                    model.GROUP, model.VERSION, namespace, model.PLURAL, **options
                )
            )
        else:
            body = _api_errors(
                lambda: self.custom.list_cluster_custom_object(
                    model.GROUP, model.VERSION, model.PLURAL, **options
                )
            )
        return schemas.QueryList.model_validate(
            {
                "items": [view(item) for item in body.get("items") or []],
                "continue": (body.get("metadata") or {}).get("continue") or None,
            }
        )

    def get(self, namespace: str, name: str) -> Obj:
        return _api_errors(
            lambda: self.custom.get_namespaced_custom_object(
                model.GROUP, model.VERSION, namespace, model.PLURAL, name
            )
        )

    def create(self, body: Mapping[str, Any]) -> Obj:
        """Validate as admission does, then create the StreamQuery."""
        request = dict(body)
        name = request.pop("name", None)
        namespace = request.pop("namespace", None)
        if "kafka" not in request and self.default_bootstrap:
            request["kafka"] = {"bootstrapServers": self.default_bootstrap}
        try:
            schemas.CreateQuery.model_validate({**request, "name": name, "namespace": namespace})
        except ValidationError as invalid:
            first = invalid.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            field = path if path in ("name", "namespace") else f"spec.{path}"
            raise Invalid(
                [
                    schemas.Problem(
                        code="INVALID_SPEC",
                        message=first["msg"],
                        field=field,
                        rendered=f"{field}: {first['msg']}",
                    )
                ]
            ) from None
        found = spec_problems(request)
        if found:
            raise Invalid(found)
        manifest = {
            "apiVersion": model.API_VERSION,
            "kind": model.KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": request,
        }
        return _api_errors(
            lambda: self.custom.create_namespaced_custom_object(
                model.GROUP, model.VERSION, str(namespace), model.PLURAL, manifest
            )
        )

    def patch(self, namespace: str, name: str, changes: schemas.PatchQuery) -> Obj:
        """Merge the changes into the spec; a SQL change the operator would refuse is not
        written (409, with the operator's reason)."""
        current = self.get(namespace, name)
        patch = changes.model_dump(by_alias=True, exclude_none=True, mode="json")
        if not patch:
            return current
        spec = {**(current.get("spec") or {}), **patch}
        found = spec_problems(spec)
        if found:
            raise Invalid(found)
        if "sql" in patch or "upgradeMode" in patch:
            parsed = model.StreamQuerySpec.model_validate(spec)
            plan = plan_statement(load_single_query(parsed.sql)[1])
            decided = identity(
                current["metadata"]["uid"], parsed, plan, current.get("status") or {}
            )
            if decided.refused and decided.upgrade is not None:
                raise Conflict(
                    schemas.Problem(
                        code="UPGRADE_REFUSED",
                        message=(
                            "state-incompatible SQL change refused under upgradeMode "
                            f"last-state: the new query {decided.upgrade.reason}. The query "
                            "keeps running its previous SQL; set upgradeMode to stateless or "
                            "reset to apply it with empty state"
                        ),
                        field="spec.sql",
                    )
                )
        body = {"spec": patch}
        return _api_errors(
            lambda: self.custom.patch_namespaced_custom_object(
                model.GROUP, model.VERSION, namespace, model.PLURAL, name, body
            )
        )

    def delete(self, namespace: str, name: str) -> Obj:
        return _api_errors(
            lambda: self.custom.delete_namespaced_custom_object(
                model.GROUP, model.VERSION, namespace, model.PLURAL, name
            )
        )

    def pod_endpoints(self, namespace: str, name: str) -> list[str]:
        """http://IP:PORT of the query's running pods, in ordinal order."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector_string(name))
        running = [
            pod
            for pod in pods.items
            if pod.status is not None and pod.status.phase == "Running" and pod.status.pod_ip
        ]
        running.sort(key=lambda pod: _ordinal((pod.metadata.name if pod.metadata else "") or ""))
        return [f"http://{pod.status.pod_ip}:{METRICS_PORT}" for pod in running if pod.status]

    def watch(
        self, namespace: str, name: str | None, stop: threading.Event
    ) -> Iterator[tuple[str, Obj]]:
        """(event type, object) for the namespace's queries (or one), until `stop` is set."""
        options: dict[str, Any] = {}
        if name:
            options["field_selector"] = f"metadata.name={name}"
        while not stop.is_set():
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    model.GROUP,
                    model.VERSION,
                    namespace,
                    model.PLURAL,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    **options,
                ):
                    if stop.is_set():
                        break
                    obj = event.get("object")
                    if isinstance(obj, dict):
                        yield str(event.get("type")), obj
            finally:
                watcher.stop()  # type: ignore[no-untyped-call]


def _ordinal(pod_name: str) -> int:
    tail = pod_name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
