"""The administrator's policy on images and service accounts, and the admission and reconcile
paths that apply it (the same paths run against the real API server in
tests/k8s/test_operator_policy.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.handlers.reconcile import reconcile
from streamhouse_operator.kube import Kube
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import ConditionStatus, ConditionType, LifecycleState
from streamhouse_operator.policy import Policy, image_allowed, image_repository
from streamhouse_runtime.sql.errors import ErrorCode
from tests.unit.operator.spec_cases import BASE_SPEC

pytestmark = pytest.mark.unit

SQL = (
    "CREATE STREAM o (id BIGINT) WITH (kafka_topic='o', value_format='JSON');\n"
    "CREATE STREAM p AS SELECT * FROM o;"
)


def _spec(**fields: Any) -> dict[str, Any]:
    return {**BASE_SPEC, "sql": SQL, **fields}


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("streamhouse:0.1.0", "streamhouse"),
        ("streamhouse", "streamhouse"),
        ("registry:5000/team/app", "registry:5000/team/app"),
        ("registry:5000/team/app:1.2", "registry:5000/team/app"),
        ("ghcr.io/x/app:1.2@sha256:abc", "ghcr.io/x/app"),
        ("ghcr.io/x/app@sha256:abc", "ghcr.io/x/app"),
    ],
)
def test_image_repository_drops_tag_and_digest_but_not_a_registry_port(
    image: str, repository: str
) -> None:
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("streamhouse:0.2.0", True),
        ("streamhouse@sha256:abc", True),
        ("streamhouse", True),
        ("streamhouse-evil:1", False),  # a repository entry is not a string prefix
        ("streamhouse/other:1", False),
        ("registry.example.com/streaming/app:1", True),
        ("registry.example.com/streaming/", False),
        ("registry.example.com/streaming-evil/app:1", False),
        ("registry.example.com/other/app:1", False),
        ("docker.io/library/python:3.11", False),
    ],
)
def test_image_entries_are_repositories_or_path_prefixes(image: str, allowed: bool) -> None:
    assert image_allowed(image, ("streamhouse", "registry.example.com/streaming/")) is allowed


def test_the_default_policy_allows_the_operators_own_repository_only() -> None:
    policy = Policy.from_env("registry.example.com/streamhouse:0.1.0", {})
    assert policy == Policy(("registry.example.com/streamhouse",), allow_service_accounts=False)
    listed = Policy.from_env(
        "streamhouse:0.1.0",
        {
            "STREAMHOUSE_ALLOWED_IMAGE_PREFIXES": " a/ , b ,",
            "STREAMHOUSE_ALLOW_SERVICE_ACCOUNTS": "true",
        },
    )
    assert listed == Policy(("a/", "b"), allow_service_accounts=True)


def test_admission_refuses_a_foreign_image_with_its_code_and_field() -> None:
    policy = Policy.from_env("streamhouse:0.1.0", {})
    reason = problem(_spec(image="docker.io/library/python:3.11"), policy)
    assert reason is not None
    assert reason.startswith(f"spec.image: error[{ErrorCode.IMAGE_NOT_ALLOWED.value}]: image ")
    assert "'docker.io/library/python:3.11' is not allowed" in reason
    assert problem(_spec(image="streamhouse:0.2.0"), policy) is None
    assert problem(_spec(), policy) is None  # unset: the operator's own image


@pytest.mark.parametrize(("account", "refused"), [("ci-admin", True), ("default", False)])
def test_admission_refuses_other_service_accounts_unless_allowed(
    account: str, refused: bool
) -> None:
    spec = _spec(podTemplate={"serviceAccountName": account})
    reason = problem(spec, Policy(("streamhouse",)))
    if refused:
        assert reason is not None
        code = ErrorCode.SERVICE_ACCOUNT_NOT_ALLOWED.value
        assert reason.startswith(f"spec.podTemplate.serviceAccountName: error[{code}]: ")
    else:
        assert reason is None
    assert problem(spec, Policy(("streamhouse",), allow_service_accounts=True)) is None


def test_the_first_violation_is_the_image() -> None:
    spec = model.StreamQuerySpec.model_validate(
        _spec(image="evil:1", podTemplate={"serviceAccountName": "root"})
    )
    violation = Policy(("streamhouse",)).violation(spec)
    assert violation is not None and violation.field == "spec.image"


class _NoApi:
    """Any call to the API but an event fails the test: a refused query must touch nothing
    (the lifecycle event that says why is the one call it makes)."""

    def __getattr__(self, name: str) -> Any:
        if name == "post_event":
            return lambda *args, **kwargs: None
        raise AssertionError(f"reconcile called the API ({name}) for a refused query")


def test_reconcile_marks_a_refused_query_failed_and_touches_nothing() -> None:
    status = reconcile(
        cast(Kube, _NoApi()),
        name="q",
        namespace="shop",
        uid="8d3c1f6e-0000-4000-8000-000000000001",
        generation=1,
        spec=_spec(podTemplate={"serviceAccountName": "ci-admin"}),
        status={},
        image="streamhouse:0.1.0",
        policy=Policy(("streamhouse",)),
    )
    assert status.lifecycle_state is LifecycleState.FAILED
    assert status.error is not None
    assert status.error.code == "E423"
    assert status.error.field == "spec.podTemplate.serviceAccountName"
    validated = next(c for c in status.conditions if c.type == ConditionType.VALIDATED)
    assert (validated.status, validated.reason) == (ConditionStatus.FALSE, "PolicyViolation")
