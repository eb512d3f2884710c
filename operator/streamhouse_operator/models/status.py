"""The StreamQuery status, as pydantic models. The CRD's status schema is generated from these.

Status follows the Flink Kubernetes Operator: `observedGeneration`, a `lifecycleState` for humans
and printer columns, standard `conditions` for `kubectl wait`, the last reconciled and last
stable spec as JSON strings, and the error that stopped the query. Live figures scraped from the
pods' /metrics sit next to them so `kubectl get sq` can show lag and rates.

No Secret value ever belongs here: the spec only names Secrets, and the JSON copies of the spec
hold nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# metav1.Condition's own validation, so our conditions read like every other controller's.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_SPEC_JSON_LENGTH = 1_048_576


class _Model(BaseModel):
    # Status is read back from the cluster, where other writers (kopf's own bookkeeping under
    # status.kopf, a newer operator) may have added fields: ignore them instead of failing.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class LifecycleState(StrEnum):
    """Where the query is in its life, as one word (the printer column STATE)."""

    CREATED = "CREATED"  # seen, nothing deployed yet
    DEPLOYING = "DEPLOYING"  # children created or patched, pods not all ready
    RUNNING = "RUNNING"  # every desired pod ready
    SUSPENDED = "SUSPENDED"  # scaled to zero on request; volumes and offsets kept
    UPGRADING = "UPGRADING"  # a changed spec is rolling out
    FAILED = "FAILED"  # invalid spec, refused upgrade or crash loop: see error and conditions
    DELETING = "DELETING"  # finalizer running


class ConditionType(StrEnum):
    """The condition types the operator maintains."""

    READY = "Ready"  # the query runs with every desired pod ready (or is suspended cleanly)
    VALIDATED = "Validated"  # the spec and SQL passed validation and planning
    PROGRESSING = "Progressing"  # a rollout (create, upgrade, scale, resume) is under way
    DEGRADED = "Degraded"  # something is wrong: pods crash, an upgrade was refused


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """A standard Kubernetes condition (the shape of metav1.Condition)."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Ready, Validated, Progressing or Degraded.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason for the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed for."
    )
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When status last changed (RFC 3339).",
    )


class QueryError(_Model):
    """Why the query cannot run: the SQL front end's error, or a spec or upgrade problem."""

    code: str = Field(max_length=128, description="Stable error code, e.g. SQL_PARSE_ERROR.")
    message: str = Field(max_length=32768, description="What is wrong, for humans.")
    line: int | None = Field(default=None, ge=1, description="SQL line of the error.")
    column: int | None = Field(default=None, ge=1, description="SQL column of the error.")
    field: str | None = Field(
        default=None, max_length=1024, description="Spec field path of the error, e.g. spec.sql."
    )


class StreamQueryStatus(_Model):
    """What the operator observed and did. Written only by the operator."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the last reconciled spec."
    )
    lifecycle_state: LifecycleState | None = Field(
        default=None, description="CREATED, DEPLOYING, RUNNING, SUSPENDED, UPGRADING, FAILED."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, Validated, Progressing and Degraded.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    replicas: int | None = Field(default=None, ge=0, description="Pods of the StatefulSet.")
    ready_replicas: int | None = Field(default=None, ge=0, description="Pods that are ready.")
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the query's pods (for the scale subresource).",
    )
    query_id: str | None = Field(
        default=None,
        max_length=64,
        description="Identity of consumer group, internal topics and state (from metadata.uid).",
    )
    state_id: str | None = Field(
        default=None,
        max_length=64,
        description="Identity of internal topics and state; differs from queryId after an "
        "upgrade that started with empty state (upgradeMode stateless).",
    )
    identities: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None,
        max_length=64,
        description="Every query and state identity the query has used: the internal topics "
        "and consumer groups a delete with deleteInternalTopics removes.",
    )
    output_topic: str | None = Field(
        default=None, max_length=249, description="Kafka topic the query writes."
    )
    catalog_sources: list[Annotated[str, StringConstraints(max_length=512)]] | None = Field(
        default=None,
        max_length=256,
        description="Streams and tables the SQL reads from the namespace's catalog "
        "(StreamSource objects), by SQL name.",
    )
    plan_summary: str | None = Field(
        default=None, max_length=1024, description="One-line summary of the query plan."
    )
    plan_fingerprint: str | None = Field(
        default=None,
        max_length=128,
        description="Fingerprint of the stateful parts of the plan, for upgrade compatibility.",
    )
    error: QueryError | None = Field(default=None, description="Why the query is FAILED.")
    last_reconciled_spec: str | None = Field(
        default=None,
        max_length=MAX_SPEC_JSON_LENGTH,
        description="JSON of the spec last applied to the children.",
    )
    last_stable_spec: str | None = Field(
        default=None,
        max_length=MAX_SPEC_JSON_LENGTH,
        description="JSON of the last spec that ran with every pod ready.",
    )
    lag: int | None = Field(
        default=None, ge=0, description="Consumer lag in records, summed over partitions."
    )
    input_rate: float | None = Field(default=None, ge=0, description="Records consumed per second.")
    output_rate: float | None = Field(
        default=None, ge=0, description="Records produced per second."
    )
    dead_lettered: int | None = Field(
        default=None, ge=0, description="Records sent to the dead-letter topic since start."
    )
    watermark: str | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"format": "date-time"},
        description="Lowest event-time watermark over the pods (RFC 3339).",
    )

    def as_patch(self, clear: Iterable[str] = ()) -> dict[str, Any]:
        """The status as a JSON-ready dict with the CRD's field names, unset fields left out,
        except those named in `clear` (CRD names), sent as null: a merge patch removes them."""
        patch = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        for field in clear:
            patch.setdefault(field, None)
        return patch


# Fields that describe the present and must not outlive it: no error once the query
# recovers, no figures when no pod answered.
TRANSIENT_FIELDS = ("error", "lag", "inputRate", "outputRate", "deadLettered", "watermark")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes lastTransitionTime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_watermark(epoch_ms: int) -> str:
    """A watermark in milliseconds since the epoch, as the RFC 3339 status.watermark."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of that type, or None."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus | str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with the condition of `type_` set (appended if absent, in place otherwise).

    lastTransitionTime changes only when the status does, so repeated reconciles that find the
    same state do not make `kubectl wait` or alerting see a transition that never happened.
    """
    status = ConditionStatus(status)
    previous = get_condition(conditions, type_)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == status
        else format_time(now)
    )
    updated = Condition(
        type=str(type_),
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=transition,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]
