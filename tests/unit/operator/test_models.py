"""The pydantic models of the StreamQuery spec and status: validation mirrors the CRD."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streamhouse_operator.models import status as status_model
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    LifecycleState,
    StreamQueryStatus,
    set_condition,
)
from tests.unit.operator.spec_cases import (
    ACCEPTED_OVERRIDES,
    BASE_SPEC,
    FULL_SPEC,
    INVALID_NAMES,
    INVALID_SPECS,
    VALID_NAMES,
    InvalidSpec,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("case", INVALID_SPECS, ids=lambda case: case.id)
def test_invalid_spec_is_rejected_by_the_model_naming_the_same_field(case: InvalidSpec) -> None:
    """The same cases tests/k8s/test_crd.py sends to the real API server."""
    with pytest.raises(ValidationError) as rejected:
        model.StreamQuerySpec.model_validate(case.full())
    text = str(rejected.value)
    # pydantic writes `podTemplate.tolerations.0.operator` where the API server writes
    # `spec.podTemplate.tolerations[0].operator`: compare the path's words.
    for part in re.split(r"[.\[\]]+", case.field.removeprefix("spec.")):
        assert part and part in text, (part, text)
    assert case.message in text


@pytest.mark.parametrize("overrides", ACCEPTED_OVERRIDES)
def test_overrides_that_keep_the_guarantee_are_accepted(
    overrides: dict[str, dict[str, str]],
) -> None:
    """The same overrides tests/k8s/test_crd.py sends to the real API server."""
    spec = model.StreamQuerySpec.model_validate(
        {**BASE_SPEC, "kafka": {"bootstrapServers": "k:9092", **overrides}}
    )
    assert spec.kafka.consumer == overrides.get("consumer", {})
    assert spec.kafka.producer == overrides.get("producer", {})


def test_full_spec_round_trips_through_json_with_the_crd_field_names() -> None:
    spec = model.StreamQuerySpec.model_validate(FULL_SPEC)
    assert spec.kafka.secret_ref is not None and spec.kafka.secret_ref.name == "kafka-client"
    assert spec.pod_template is not None
    assert spec.pod_template.tolerations[0].operator is model.TolerationOperator.EQUAL
    again = model.spec_from_json(model.spec_json(spec))
    assert again == spec
    assert again.model_dump(by_alias=True, exclude_none=True, mode="json") == FULL_SPEC


def test_minimal_spec_gets_the_documented_defaults() -> None:
    spec = model.StreamQuerySpec.model_validate(BASE_SPEC)
    assert spec.parallelism == 1
    assert spec.state is model.QueryState.RUNNING
    assert spec.upgrade_mode is model.UpgradeMode.LAST_STATE
    assert spec.processing_guarantee is model.ProcessingGuarantee.AT_LEAST_ONCE
    assert spec.error_policy is model.ErrorPolicy.DEAD_LETTER
    assert spec.lateness == "0s"
    assert spec.storage.size == "1Gi"
    assert spec.delete_internal_topics is False
    assert spec.resources is None and spec.udfs is None and spec.kafka.secret_ref is None


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="replicas"):
        model.StreamQuerySpec.model_validate({**BASE_SPEC, "replicas": 3})


def test_explicit_null_dead_letter_topic_is_allowed_with_any_policy() -> None:
    """The API server treats a null like an absent field in CEL; so does the model."""
    spec = model.StreamQuerySpec.model_validate(
        {**BASE_SPEC, "errorPolicy": "skip", "deadLetterTopic": None}
    )
    assert spec.dead_letter_topic is None


def test_limits_equal_to_requests_and_limits_for_other_resources_are_fine() -> None:
    resources = model.ResourceRequirements.model_validate(
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1024Mi"}}
    )
    assert resources.limits == {"memory": "1024Mi"}


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_query_names(name: str) -> None:
    model.validate_query_name(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_query_names(name: str) -> None:
    with pytest.raises(ValueError, match="DNS-1035"):
        model.validate_query_name(name)


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("0s", 0),
        ("250ms", 250),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1m30s", 90_000),
        ("1h0m5s20ms", 3_605_020),
    ],
)
def test_duration_parser(text: str, milliseconds: int) -> None:
    assert model.parse_duration_ms(text) == milliseconds


@pytest.mark.parametrize("text", ["", "30", "1.5s", "-1s", "30 s", "1d", "5sec"])
def test_duration_parser_rejects_what_the_schema_rejects(text: str) -> None:
    assert not re.fullmatch(model.DURATION_PATTERN, text)
    with pytest.raises(ValueError, match="duration"):
        model.parse_duration_ms(text)


@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["ms", "s", "m", "h"])), min_size=1)
)
def test_every_duration_the_schema_accepts_parses_to_its_sum(
    parts: list[tuple[int, str]],
) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    assert re.fullmatch(model.DURATION_PATTERN, text)
    unit_ms = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
    assert model.parse_duration_ms(text) == sum(amount * unit_ms[unit] for amount, unit in parts)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Gi", Decimal(2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("100m", Decimal("0.1")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("1k", Decimal(1000)),
        ("1E", Decimal(10**18)),
        ("1e3", Decimal(1000)),
        ("2E-3", Decimal("0.002")),
    ],
)
def test_quantity_parser(text: str, value: Decimal) -> None:
    assert model.parse_quantity(text) == value


def test_quantity_parser_rejects_non_quantities() -> None:
    for text in ("", "two", "1GB", "-1", "1 Gi"):
        with pytest.raises(ValueError, match="quantity"):
            model.parse_quantity(text)


# --- status --------------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_set_condition_appends_a_new_type_without_touching_the_input() -> None:
    before: list[Condition] = []
    after = set_condition(before, ConditionType.READY, "False", "Deploying", "0/1", 1, T0)
    assert before == []
    assert [c.model_dump(by_alias=True) for c in after] == [
        {
            "type": "Ready",
            "status": ConditionStatus.FALSE,
            "reason": "Deploying",
            "message": "0/1",
            "observedGeneration": 1,
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ]


def test_set_condition_keeps_the_transition_time_while_the_status_is_unchanged() -> None:
    conditions = set_condition([], ConditionType.READY, "False", "Deploying", "0/2", 1, T0)
    later = T0 + timedelta(minutes=5)
    same = set_condition(conditions, ConditionType.READY, "False", "Deploying", "1/2", 2, later)
    assert same[0].last_transition_time == "2024-05-01T12:00:00Z"
    assert (same[0].message, same[0].observed_generation) == ("1/2", 2)
    flipped = set_condition(same, ConditionType.READY, "True", "AllReady", "2/2", 2, later)
    assert flipped[0].last_transition_time == "2024-05-01T12:05:00Z"
    assert flipped[0].status is ConditionStatus.TRUE


def test_set_condition_replaces_in_place_and_leaves_other_types_alone() -> None:
    conditions = set_condition([], ConditionType.VALIDATED, "True", "Planned", "", 1, T0)
    conditions = set_condition(conditions, ConditionType.READY, "False", "Deploying", "", 1, T0)
    updated = set_condition(
        conditions, ConditionType.VALIDATED, "False", "SqlError", "1:8 ...", 2, T0 + timedelta(1)
    )
    assert [c.type for c in updated] == ["Validated", "Ready"]
    assert updated[1] == conditions[1]
    assert updated[0].last_transition_time == "2024-05-02T12:00:00Z"


def test_set_condition_writes_utc_whatever_the_clock_zone() -> None:
    local = datetime(2024, 5, 1, 14, 0, 0, tzinfo=UTC).astimezone()
    conditions = set_condition([], "Ready", ConditionStatus.UNKNOWN, "Starting", "", None, local)
    assert conditions[0].last_transition_time == "2024-05-01T14:00:00Z"


def test_set_condition_rejects_a_reason_kubernetes_would_reject() -> None:
    with pytest.raises(ValidationError):
        set_condition([], "Ready", "True", "not a reason", "", 1, T0)


def test_status_patch_uses_crd_names_and_leaves_out_unset_fields() -> None:
    status = StreamQueryStatus(
        observed_generation=3,
        lifecycle_state=LifecycleState.RUNNING,
        conditions=set_condition([], ConditionType.READY, "True", "AllReady", "", 3, T0),
        ready_replicas=2,
        input_rate=10.5,
        watermark=status_model.format_watermark(1_714_564_800_250),
    )
    assert status.as_patch() == {
        "observedGeneration": 3,
        "lifecycleState": "RUNNING",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllReady",
                "message": "",
                "observedGeneration": 3,
                "lastTransitionTime": "2024-05-01T12:00:00Z",
            }
        ],
        "readyReplicas": 2,
        "inputRate": 10.5,
        "watermark": "2024-05-01T12:00:00.250Z",
    }


def test_status_read_back_from_the_cluster_tolerates_kopf_and_unknown_fields() -> None:
    status = StreamQueryStatus.model_validate(
        {
            "lifecycleState": "FAILED",
            "kopf": {"progress": {}},
            "error": {"code": "E", "message": "m"},
        }
    )
    assert status.lifecycle_state is LifecycleState.FAILED
    assert status.error is not None and status.error.line is None
