"""The cluster administrator's policy for what a StreamQuery author may choose for its pods.

A StreamQuery author is not a cluster administrator: the image a query's pods run and the
service account they run as are the administrator's to allow. The chart passes the policy to
the operator as environment variables; the admission webhook and reconcile both apply it
(reconcile marks a refused query FAILED with Validated=False and deploys nothing), with a coded
error that names the field.

- `STREAMHOUSE_ALLOWED_IMAGE_PREFIXES`: comma-separated. An entry ending in `/` allows every
  image under that path (`registry.example.com/streaming/`); any other entry is a repository
  and allows exactly it with any tag or digest (`streamhouse` allows `streamhouse:0.2.0` and
  `streamhouse@sha256:...`, not `streamhouse-evil:1` nor `streamhouse/other`). Unset or empty:
  the repository of the operator's own image (`STREAMHOUSE_IMAGE`). An unset `spec.image`
  (the operator's own image) is always allowed.
- `STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS`: `true` lets `podTemplate.serviceAccountName` name any
  account of the query's namespace; otherwise (the default) only `default` or none.
- `STREAMHOUSE_NETWORK_POLICIES`: `true` gives every query a NetworkPolicy, whatever its
  `spec.networkPolicy.enabled` says; otherwise a query has one when its spec asks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from streamhouse_operator.models import streamquery as model
from streamhouse_runtime.sql.errors import ErrorCode

ALLOWED_IMAGE_PREFIXES_ENV = "STREAMHOUSE_ALLOWED_IMAGE_PREFIXES"
ALLOW_SERVICE_ACCOUNTS_ENV = "STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS"
NETWORK_POLICIES_ENV = "STREAMHOUSE_NETWORK_POLICIES"
DEFAULT_SERVICE_ACCOUNT = "default"


def image_repository(image: str) -> str:
    """`registry:5000/team/app:1.2@sha256:...` -> `registry:5000/team/app` (tag and digest
    dropped; a registry's port is not a tag, because a tag comes after the last `/`)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def image_allowed(image: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `image` is under one of the allowed entries (see the module docstring)."""
    for entry in prefixes:
        if entry.endswith("/"):
            if image.startswith(entry) and len(image) > len(entry):
                return True
        elif image == entry or (image.startswith(entry) and image[len(entry)] in ":@"):
            return True
    return False


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class PolicyViolation:
    """A spec field the policy refuses: a code, the field path and why."""

    code: ErrorCode
    field: str
    message: str

    def render(self) -> str:
        """One line for the admission webhook, as SQL errors are rendered."""
        return f"{self.field}: error[{self.code.value}]: {self.message}"


@dataclass(frozen=True)
class Policy:
    allowed_image_prefixes: tuple[str, ...]
    allow_service_accounts: bool = False
    network_policies: bool = False

    @classmethod
    def from_env(cls, default_image: str, environ: Mapping[str, str] | None = None) -> Policy:
        """The policy the chart configured; read on every use, so it is never stale."""
        env = os.environ if environ is None else environ
        listed = tuple(
            entry.strip()
            for entry in env.get(ALLOWED_IMAGE_PREFIXES_ENV, "").split(",")
            if entry.strip()
        )
        allow = _flag(env.get(ALLOW_SERVICE_ACCOUNTS_ENV, ""))
        network = _flag(env.get(NETWORK_POLICIES_ENV, ""))
        return cls(listed or (image_repository(default_image),), allow, network)

    def network_policy(self, spec: model.StreamQuerySpec) -> bool:
        """Whether the query gets a NetworkPolicy: the chart's flag or the spec's."""
        return self.network_policies or bool(spec.network_policy and spec.network_policy.enabled)

    def violation(self, spec: model.StreamQuerySpec) -> PolicyViolation | None:
        """The first field of `spec` this policy refuses, or None."""
        if spec.image is not None and not image_allowed(spec.image, self.allowed_image_prefixes):
            allowed = ", ".join(self.allowed_image_prefixes)
            return PolicyViolation(
                ErrorCode.IMAGE_NOT_ALLOWED,
                "spec.image",
                f"image {spec.image!r} is not allowed by the cluster's policy (allowed: "
                f"{allowed}; an entry ending in '/' allows every image under it, any other "
                "entry that repository with any tag or digest); leave spec.image unset to run "
                "the operator's own image",
            )
        account = spec.pod_template.service_account_name if spec.pod_template else None
        if account not in (None, DEFAULT_SERVICE_ACCOUNT) and not self.allow_service_accounts:
            return PolicyViolation(
                ErrorCode.SERVICE_ACCOUNT_NOT_ALLOWED,
                "spec.podTemplate.serviceAccountName",
                f"service account {account!r} is not allowed by the cluster's policy: query pods "
                f"run as {DEFAULT_SERVICE_ACCOUNT!r} unless the administrator allows others "
                "(the chart's policy.allowServiceAccounts)",
            )
        return None
