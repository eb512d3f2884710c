"""Lets kopf manage a ValidatingWebhookConfiguration that the operator may patch but not create.

kopf keeps the webhook configuration it manages pointing at the operator (a patch of its
`webhooks`), but first POSTs it "in case it is absent" and stops the operator if that is
forbidden. RBAC cannot restrict `create` by object name, and an operator that may create
webhook configurations can register one that receives any object, Secrets included, in its
admission reviews. So the chart creates the configuration itself, grants the operator only
get/patch/update of that one name (`resourceNames`), and sets STREAMHOUSE_WEBHOOK_PRECREATED;
with it, a refused create of exactly that configuration counts as "exists already", which is
what kopf does with a 409. Anything else forbidden still stops the operator.

This wraps `kopf._cogs.clients.creating.create_obj`, which kopf 1.45's admission engine calls
through its module; tests/k8s/test_chart_rbac.py runs the operator as the chart's service
account with the webhook on, so a kopf upgrade that changes this fails a test.
"""

from __future__ import annotations

from typing import Any

from kopf._cogs.clients import creating, errors
from kopf._cogs.structs import bodies, references

WEBHOOK_GROUP = "admissionregistration.k8s.io"
WEBHOOK_PLURAL = "validatingwebhookconfigurations"


def tolerate_precreated(configuration_name: str) -> None:
    """From now on, a forbidden create of `configuration_name` is treated as a conflict."""
    original = creating.create_obj
    if getattr(original, "_streamhouse_tolerates", None) == configuration_name:
        return  # already installed (a second operator start in the same process)

    async def create_obj(
        *, resource: references.Resource, name: str | None = None, **kwargs: Any
    ) -> bodies.RawBody | None:
        try:
            return await original(resource=resource, name=name, **kwargs)
        except errors.APIForbiddenError:
            ours = (
                resource.group == WEBHOOK_GROUP
                and resource.plural == WEBHOOK_PLURAL
                and name == configuration_name
            )
            if not ours:
                raise
            raise errors.APIConflictError(
                f"{WEBHOOK_PLURAL} {configuration_name!r} is created by the chart",
                status=409,
                headers={},
            ) from None

    create_obj._streamhouse_tolerates = configuration_name  # type: ignore[attr-defined]
    creating.create_obj = create_obj
