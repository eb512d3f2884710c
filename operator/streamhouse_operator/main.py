"""kopf registrations only; the logic lives in handlers/.

Run with `streamhouse operator [--namespace NS]` (or `kopf run -m streamhouse_operator.main`).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import kopf

from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.handlers.catalog import (
    declaration_problem,
    delete_problem,
    namespace_catalog,
    source_status,
)
from streamhouse_operator.handlers.delete import finalize
from streamhouse_operator.handlers.reconcile import reconcile
from streamhouse_operator.kube import Kube
from streamhouse_operator.live import Scraper
from streamhouse_operator.metrics import OperatorMetrics
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models import streamsource as catalog_model
from streamhouse_operator.models.status import (
    TRANSIENT_FIELDS,
    ConditionStatus,
    ConditionType,
    get_condition,
)
from streamhouse_operator.policy import Policy
from streamhouse_operator.webhook_configuration import (
    no_mutating_configuration,
    tolerate_precreated,
)

DEFAULT_IMAGE = os.environ.get("STREAMHOUSE_IMAGE", "streamhouse:0.1.0")
WEBHOOK_ADDRESS = os.environ.get("STREAMHOUSE_WEBHOOK_ADDR")
# The ValidatingWebhookConfiguration kopf keeps; one per operator installation.
WEBHOOK_NAME = os.environ.get("STREAMHOUSE_WEBHOOK_NAME", "streamhouse.io")
OBSERVE_INTERVAL_S = float(os.environ.get("STREAMHOUSE_OBSERVE_INTERVAL_S", "10"))
STOP_WAIT_RETRIES = 30  # x 2 s: how long a delete waits for the pods before removing topics


@functools.cache
def _kube() -> Kube:
    return Kube()


SCRAPER = Scraper()  # remembers the last scrape of each query, for rates
METRICS = OperatorMetrics()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Events only for warnings and up; handler results never land in status (we patch it)."""
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="streamhouse.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="streamhouse.io")
    # The operator's own /metrics (reconciles, errors, durations, queries per lifecycle state).
    metrics_port = os.environ.get("STREAMHOUSE_OPERATOR_METRICS_PORT")
    if metrics_port:
        METRICS.serve(
            int(metrics_port), os.environ.get("STREAMHOUSE_OPERATOR_METRICS_ADDR", "0.0.0.0")
        )
    address = WEBHOOK_ADDRESS
    if address:
        # The API server calls this endpoint on every create/update of a StreamQuery; kopf
        # keeps the ValidatingWebhookConfiguration WEBHOOK_NAME pointing at it.
        settings.admission.server = kopf.WebhookServer(
            addr=address,
            port=int(os.environ.get("STREAMHOUSE_WEBHOOK_PORT", "9443")),
            host=os.environ.get("STREAMHOUSE_WEBHOOK_HOST") or address,
            certfile=os.environ.get("STREAMHOUSE_WEBHOOK_CERTFILE"),
            pkeyfile=os.environ.get("STREAMHOUSE_WEBHOOK_KEYFILE"),
            cafile=os.environ.get("STREAMHOUSE_WEBHOOK_CAFILE"),
        )
        settings.admission.managed = WEBHOOK_NAME
        if os.environ.get("STREAMHOUSE_WEBHOOK_PRECREATED", "").lower() == "true":
            # The chart created the configuration; the operator may only patch it.
            tolerate_precreated(WEBHOOK_NAME)


def validate_query(*, spec: kopf.Spec, **kwargs: Any) -> None:
    """Admission: refuse a spec whose SQL the runtime could not run, with its line:column, or
    that the administrator's policy (policy.py) refuses, with the field path. An update that
    leaves the spec alone (labels, finalizers, status) is never refused."""
    old = kwargs.get("old") or {}
    old_spec = old.get("spec")
    if old_spec is not None and dict(old_spec) == dict(spec):
        return
    namespace = kwargs.get("namespace") or "default"
    reason = problem(
        dict(spec),
        Policy.from_env(DEFAULT_IMAGE),
        namespace_catalog(_kube(), namespace).sources,
    )
    if reason is not None:
        raise kopf.AdmissionError(reason, code=422)


def validate_source(*, spec: kopf.Spec, name: str, **kwargs: Any) -> None:
    """Admission of a StreamSource: a create or update must hold one valid declaration whose
    name no other StreamSource declares; a delete is refused while queries read it."""
    namespace = kwargs.get("namespace") or "default"
    if kwargs.get("operation") == "DELETE":
        refusal = delete_problem(_kube(), namespace, name, dict(spec))
        if refusal is not None:
            raise kopf.AdmissionError(refusal, code=409)
        return
    old = kwargs.get("old") or {}
    if old.get("spec") is not None and dict(old["spec"]) == dict(spec):
        return
    invalid = declaration_problem(_kube(), namespace, name, dict(spec))
    if invalid is not None:
        raise kopf.AdmissionError(invalid.render("spec.sql"), code=422)


# kopf refuses to start with admission handlers but no webhook server, so the handler exists
# only when the webhook is configured; reconcile validates either way.
if WEBHOOK_ADDRESS:
    # Before kopf starts its root tasks (startup handlers run after them): no mutating
    # handler, so no MutatingWebhookConfiguration to create or keep.
    no_mutating_configuration()
    # CREATE and UPDATE only: a delete, or kopf's own finalizer bookkeeping, never waits for
    # (or is refused by) the SQL front end.
    kopf.on.validate(
        model.GROUP, model.VERSION, model.PLURAL, id="sql", operations=["CREATE", "UPDATE"]
    )(validate_query)
    kopf.on.validate(
        model.GROUP,
        model.VERSION,
        catalog_model.PLURAL,
        id="catalog",
        operations=["CREATE", "UPDATE", "DELETE"],
    )(validate_source)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: $KUBECONFIG, read when the operator starts."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.resume(model.GROUP, model.VERSION, model.PLURAL)
@kopf.on.create(model.GROUP, model.VERSION, model.PLURAL)
@kopf.on.update(model.GROUP, model.VERSION, model.PLURAL)
@kopf.timer(model.GROUP, model.VERSION, model.PLURAL, interval=OBSERVE_INTERVAL_S, idle=1)
def reconcile_query(
    *,
    name: str,
    namespace: str | None,
    uid: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Create, update, resume, and every OBSERVE_INTERVAL_S: validate the SQL, apply the
    children (server-side apply is idempotent, so drift such as a StatefulSet deleted by hand
    is repaired), and write status."""
    with METRICS.reconciling():
        result = reconcile(
            _kube(),
            name=name,
            namespace=namespace or "default",
            uid=uid,
            generation=int(meta.get("generation") or 1),
            spec=dict(spec),
            status=dict(status),
            image=DEFAULT_IMAGE,
            scraper=SCRAPER,
            policy=Policy.from_env(DEFAULT_IMAGE),
        )
    ready = get_condition(result.conditions, ConditionType.READY)
    METRICS.observed(
        namespace or "default",
        name,
        result.lifecycle_state,
        ready is not None and ready.status is ConditionStatus.TRUE,
    )
    # A merge patch keeps what it does not name: transient fields are cleared explicitly.
    patch.status.update(result.as_patch(clear=[f for f in TRANSIENT_FIELDS if f in status]))


def _deletes_topics(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("deleteInternalTopics"))


# Only queries that ask for their topics to go carry the finalizer: deleting any other one is
# left to owner references alone and cannot hang on a stopped operator.
@kopf.on.delete(model.GROUP, model.VERSION, model.PLURAL, when=_deletes_topics)
def delete_query(
    *,
    name: str,
    namespace: str | None,
    uid: str,
    spec: kopf.Spec,
    status: kopf.Status,
    retry: int,
    **_: Any,
) -> None:
    """The finalizer: internal topics go when spec.deleteInternalTopics says so, once the pods
    have stopped. Bounded (STOP_WAIT_RETRIES) and never raising otherwise (see cleanup.py), so
    the object never hangs in Terminating."""
    deleted = finalize(
        _kube(),
        name=name,
        namespace=namespace or "default",
        uid=uid,
        spec=dict(spec),
        status=dict(status),
        wait_for_pods=retry < STOP_WAIT_RETRIES,
    )
    if deleted is None:
        raise kopf.TemporaryError("waiting for the query's pods to stop", delay=2)
    SCRAPER.forget(uid)


@kopf.on.delete(model.GROUP, model.VERSION, model.PLURAL, optional=True, id="metrics")
def forget_query(*, name: str, namespace: str | None, **_: Any) -> None:
    """A deleted query leaves the operator's metrics (no finalizer: optional)."""
    METRICS.forget(namespace or "default", name)


@kopf.on.resume(model.GROUP, model.VERSION, catalog_model.PLURAL)
@kopf.on.create(model.GROUP, model.VERSION, catalog_model.PLURAL)
@kopf.on.update(model.GROUP, model.VERSION, catalog_model.PLURAL)
@kopf.timer(model.GROUP, model.VERSION, catalog_model.PLURAL, interval=OBSERVE_INTERVAL_S, idle=1)
def reconcile_source(
    *,
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """A catalog declaration: validate it (same codes as the webhook) and write what it
    declares and which queries read it. Queries pick a change up on their next re-check."""
    result = source_status(
        _kube(),
        namespace or "default",
        name,
        int(meta.get("generation") or 1),
        dict(spec),
        dict(status),
    )
    patch.status.update(result.model_dump(by_alias=True, exclude_none=True, mode="json"))
