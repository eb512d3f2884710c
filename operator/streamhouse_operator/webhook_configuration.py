"""Lets kopf manage a ValidatingWebhookConfiguration that the operator may patch but not create.

kopf keeps the webhook configuration it manages pointing at the operator (a patch of its
`webhooks`), but first POSTs it "in case it is absent" and stops the operator if that is
forbidden. RBAC cannot restrict `create` by object name, and an operator that may create
webhook configurations can register one that receives any object, Secrets included, in its
admission reviews. So the chart creates the configuration itself, grants the operator only
get/patch/update of that one name (`resourceNames`), and sets STREAMHOUSE_WEBHOOK_PRECREATED;
with it, creating exactly that configuration counts as "exists already" (never sent), which is
what kopf does with a 409. Anything else forbidden still stops the operator.

This wraps `kopf._cogs.clients.creating.create_obj`, which kopf 1.45's admission engine calls
through its module; tests/k8s/test_chart_rbac.py runs the operator as the chart's service
account with the webhook on, so a kopf upgrade that changes this fails a test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kopf._cogs.clients import creating, errors
from kopf._cogs.structs import bodies, references
from kopf._core.engines import admission
from kopf._core.intents import causes, registries

WEBHOOK_GROUP = "admissionregistration.k8s.io"
WEBHOOK_PLURAL = "validatingwebhookconfigurations"


def tolerate_precreated(configuration_name: str) -> None:
    """From now on, creating `configuration_name` is answered as a conflict ("exists already")
    without asking the API server: the chart created it, and the operator may not create.
    (Asking would be refused, and kopf retries a refused request for about 40 s first.)"""
    original = creating.create_obj
    if getattr(original, "_streamhouse_tolerates", None) == configuration_name:
        return  # already installed (a second operator start in the same process)

    async def create_obj(
        *, resource: references.Resource, name: str | None = None, **kwargs: Any
    ) -> bodies.RawBody | None:
        ours = (
            resource.group == WEBHOOK_GROUP
            and resource.plural == WEBHOOK_PLURAL
            and name == configuration_name
        )
        if not ours:
            return await original(resource=resource, name=name, **kwargs)
        raise errors.APIConflictError(
            f"{WEBHOOK_PLURAL} {configuration_name!r} is created by the chart",
            status=409,
            headers={},
        )

    create_obj._streamhouse_tolerates = configuration_name  # type: ignore[attr-defined]
    creating.create_obj = create_obj


def no_mutating_configuration() -> None:
    """kopf manages a MutatingWebhookConfiguration of the same name even without a mutating
    handler (it creates it, then keeps it empty). StreamHouse has none, and the chart grants
    no rights on mutating configurations: without mutating handlers the manager just waits."""
    original = admission.mutating_configuration_manager
    if getattr(original, "_streamhouse_idle", False):
        return

    async def manager(*, registry: registries.OperatorRegistry, **kwargs: Any) -> None:
        mutating = [
            handler
            for handler in registry._webhooks.get_all_handlers()
            if handler.reason == causes.WebhookType.MUTATING
        ]
        if mutating:
            await original(registry=registry, **kwargs)
        else:
            await asyncio.Event().wait()

    manager._streamhouse_idle = True  # type: ignore[attr-defined]
    admission.mutating_configuration_manager = manager
