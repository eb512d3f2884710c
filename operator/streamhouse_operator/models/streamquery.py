"""The StreamQuery custom resource, as pydantic models. `crds/` is generated from these.

The spec holds intent only (Flink operator style): what to run and how, never what is running.
Every rule the CRD enforces is mirrored here, so the operator and `streamhouse` tooling reject a
bad spec with the same field path the API server would name. Rules that compare a new object
with the stored one (CEL transition rules) exist only on the API server.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from streamhouse_operator.models import kafka_overrides
from streamhouse_runtime.sql.compatibility import Compatibility

GROUP = "streamhouse.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "StreamQuery"
PLURAL = "streamqueries"
SINGULAR = "streamquery"
SHORT_NAMES = ["sq"]

MAX_SQL_LENGTH = 262_144

# The StatefulSet controller labels each pod `controller-revision-hash: <name>-<10 chars>`, and a
# label value holds at most 63 characters: longer names create a StatefulSet whose pods never
# appear. The headless Service `<name>` further needs a DNS-1035 label (no dots, leading letter).
MAX_NAME_LENGTH = 52
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# A Kubernetes object name (DNS-1123 subdomain): Secrets, ConfigMaps, service accounts.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Kubernetes' own resource.Quantity syntax, without a sign: sizes and resources are never negative.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Go-style durations restricted to whole numbers: "250ms", "30s", "5m", "1h", "1m30s".
DURATION_PATTERN = r"^([0-9]{1,9}(ms|s|m|h))+$"
TOPIC_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# librdkafka property names; which overrides are refused and why: models/kafka_overrides.py.
KAFKA_PROPERTY_PATTERN = kafka_overrides.KAFKA_PROPERTY_PATTERN


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class QueryState(StrEnum):
    """Desired run state: intent only, what the user wants."""

    RUNNING = "running"
    SUSPENDED = "suspended"


class UpgradeMode(StrEnum):
    """What happens to state and offsets when the SQL changes."""

    STATELESS = "stateless"
    LAST_STATE = "last-state"
    RESET = "reset"


class ProcessingGuarantee(StrEnum):
    """Delivery guarantee of the output. The runtime commits offsets with its state checkpoint
    and produces idempotently, which is at-least-once; exactly-once (transactional output) is not
    implemented, so it is not a value the schema accepts."""

    AT_LEAST_ONCE = "at-least-once"


class ErrorPolicy(StrEnum):
    """What the runtime does with a record it cannot decode or evaluate."""

    DEAD_LETTER = "dead-letter"
    SKIP = "skip"
    FAIL = "fail"


ObjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=OBJECT_NAME_PATTERN)
]
Quantity = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=QUANTITY_PATTERN)]
KafkaValue = Annotated[str, StringConstraints(max_length=4096)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]
AnnotationValue = Annotated[str, StringConstraints(max_length=4096)]


class SecretReference(_Model):
    """A Secret in the query's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")


class ConfigMapReference(_Model):
    """A ConfigMap in the query's namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap.")


class KafkaSpec(_Model):
    """How the query's pods reach Kafka."""

    bootstrap_servers: str = Field(
        min_length=1,
        max_length=2048,
        description="Comma-separated host:port list of the Kafka brokers.",
    )
    secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "Secret whose key `client.properties` holds librdkafka security settings "
            "(security.protocol, sasl.*, ssl.*). Mounted into the pods as a file; its values "
            "never reach environment variables, status, events or logs."
        ),
    )
    consumer: dict[str, KafkaValue] = Field(
        default_factory=dict,
        max_length=64,
        description="librdkafka consumer property overrides.",
        json_schema_extra={"x-kubernetes-validations": kafka_overrides.CEL_RULES},
    )
    producer: dict[str, KafkaValue] = Field(
        default_factory=dict,
        max_length=64,
        description="librdkafka producer property overrides.",
        json_schema_extra={"x-kubernetes-validations": kafka_overrides.CEL_RULES},
    )

    @field_validator("consumer", "producer")
    @classmethod
    def _no_refused_overrides(cls, overrides: dict[str, str]) -> dict[str, str]:
        for key, value in overrides.items():
            reason = kafka_overrides.override_problem(key, value)
            if reason is not None:
                raise PydanticCustomError("kafka_override", "{reason}", {"reason": reason})
        return overrides


class StorageSpec(_Model):
    """The volume each pod keeps its RocksDB state on. Fixed at creation: a StatefulSet's
    volumeClaimTemplates cannot change, so the API server refuses edits (a transition rule)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == oldSelf",
                    "message": (
                        "storage cannot change after creation (a StatefulSet's "
                        "volumeClaimTemplates are immutable); delete and recreate the query"
                    ),
                }
            ]
        }
    )

    size: Quantity = Field(default="1Gi", description="Size of each pod's state volume.")
    storage_class_name: ObjectName | None = Field(
        default=None, description="StorageClass of the state volumes; the cluster default if unset."
    )


class ResourceRequirements(_Model):
    """Compute resources of the query container, as in a Pod. Unset entries get the operator's
    defaults (requests cpu 100m, memory 256Mi; limits memory 512Mi). The memory limit is also
    the runtime's memory budget (RocksDB block cache, hot state)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "!has(self.limits) || !has(self.requests) || self.requests.all(k, "
                        "!(k in self.limits) || "
                        "quantity(self.limits[k]).compareTo(quantity(self.requests[k])) >= 0)"
                    ),
                    "message": "each limit must be at least the request of the same resource",
                    "fieldPath": ".limits",
                }
            ]
        }
    )

    requests: dict[str, Quantity] | None = Field(
        default=None, max_length=16, description="Minimum resources, e.g. cpu: 500m."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, max_length=16, description="Maximum resources, e.g. memory: 1Gi."
    )

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourceRequirements:
        for resource, request in (self.requests or {}).items():
            limit = (self.limits or {}).get(resource)
            if limit is not None and parse_quantity(limit) < parse_quantity(request):
                raise ValueError(
                    f"limits.{resource} ({limit}) is below requests.{resource} ({request}): "
                    "each limit must be at least the request of the same resource"
                )
        return self


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(_Model):
    """A Pod toleration, field for field."""

    key: str | None = Field(default=None, max_length=316, description="Taint key; empty: all.")
    operator: TolerationOperator | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value (Equal).")
    effect: TaintEffect | None = Field(default=None, description="Taint effect; empty: all.")
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


class PodTemplateOverrides(_Model):
    """The few pod settings a query may change. Labels and annotations are added to the
    operator's own; where a key collides, the operator's value wins (selectors depend on it)."""

    labels: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Extra pod labels."
    )
    annotations: dict[str, AnnotationValue] = Field(
        default_factory=dict, max_length=64, description="Extra pod annotations."
    )
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=32, description="Pod nodeSelector."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Pod tolerations."
    )
    service_account_name: ObjectName | None = Field(
        default=None,
        description="Service account of the pods; none mounted (no API token) if unset.",
    )
    priority_class_name: ObjectName | None = Field(
        default=None, description="PriorityClass of the pods."
    )


class UdfSpec(_Model):
    """Python user-defined functions."""

    config_map_ref: ConfigMapReference = Field(
        description="ConfigMap of Python modules, mounted on the runtime's UDF import path."
    )


class SchemaRegistrySpec(_Model):
    """A Confluent-compatible schema registry, for AVRO sources and sinks."""

    url: str = Field(
        min_length=1, max_length=2048, pattern=r"^https?://\S+$", description="Registry URL."
    )


class NetworkPolicySpec(_Model):
    """A NetworkPolicy for the query's pods (needs a CNI plugin that enforces NetworkPolicy)."""

    enabled: bool = Field(
        default=False,
        description=(
            "Egress only to the Kafka bootstrap servers' and schema registry's ports and DNS, "
            "ingress only to the metrics port. Always on when the chart's "
            "networkPolicy.enabled is."
        ),
    )


class StreamQuerySpec(_Model):
    """What the user wants to run."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # errorPolicy is defaulted, so it is absent only on objects stored before
                    # the field existed, which behave as dead-letter.
                    "rule": (
                        "!has(self.deadLetterTopic) || !has(self.errorPolicy) || "
                        "self.errorPolicy == 'dead-letter'"
                    ),
                    "message": "deadLetterTopic is only used when errorPolicy is dead-letter",
                    "fieldPath": ".deadLetterTopic",
                }
            ]
        }
    )

    sql: str = Field(
        min_length=1,
        max_length=MAX_SQL_LENGTH,
        description="The DDL of the sources plus one persistent query.",
    )
    compatibility: Compatibility = Field(
        default=Compatibility.DEFAULT,
        description=(
            "Whose conventions the SQL follows: default (StreamHouse's) or ksqldb (ksqlDB's "
            "names, keys, timestamps and windowed keys)."
        ),
    )
    kafka: KafkaSpec
    parallelism: int = Field(default=1, ge=0, le=1024, description="Number of query pods.")
    state: QueryState = Field(default=QueryState.RUNNING, description="running or suspended.")
    upgrade_mode: UpgradeMode = Field(
        default=UpgradeMode.LAST_STATE,
        description="stateless, last-state (keep state and offsets) or reset.",
    )
    restart_nonce: int | None = Field(
        default=None,
        ge=0,
        description="Change it to restart every pod of the query.",
    )
    processing_guarantee: ProcessingGuarantee = Field(
        default=ProcessingGuarantee.AT_LEAST_ONCE,
        description="Output delivery guarantee; at-least-once is the one the runtime provides.",
    )
    error_policy: ErrorPolicy = Field(
        default=ErrorPolicy.DEAD_LETTER,
        description="Bad records: dead-letter (to deadLetterTopic), skip, or fail the query.",
    )
    dead_letter_topic: str | None = Field(
        default=None,
        max_length=249,
        pattern=TOPIC_PATTERN,
        description="Topic for dead-lettered records; streamhouse-<queryId>-dlq if unset.",
    )
    lateness: str = Field(
        default="0s",
        max_length=32,
        pattern=DURATION_PATTERN,
        description="Grace period for late events, e.g. 250ms, 30s, 5m, 1h, 1m30s.",
    )
    storage: StorageSpec = Field(
        default_factory=StorageSpec,
        description="Per-pod state volume; fixed at creation.",
        # An explicit {} lets the API server fill in the nested defaults (size) as well.
        json_schema_extra={"default": {}},
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources of the query container."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        pattern=r"^\S+$",
        description="Container image; the operator's own image if unset.",
    )
    pod_template: PodTemplateOverrides | None = Field(
        default=None, description="Pod labels, annotations and scheduling settings."
    )
    udfs: UdfSpec | None = Field(default=None, description="Python user-defined functions.")
    schema_registry: SchemaRegistrySpec | None = Field(
        default=None, description="Schema registry for AVRO data."
    )
    network_policy: NetworkPolicySpec | None = Field(
        default=None, description="Restrict the pods' network traffic with a NetworkPolicy."
    )
    delete_internal_topics: bool = Field(
        default=False,
        description="Whether deleting the query also deletes its internal and changelog topics.",
    )

    @model_validator(mode="after")
    def _dead_letter_topic_needs_dead_letter_policy(self) -> StreamQuerySpec:
        if self.dead_letter_topic is not None and self.error_policy is not ErrorPolicy.DEAD_LETTER:
            raise ValueError("deadLetterTopic is only used when errorPolicy is dead-letter")
        return self


def validate_query_name(name: str) -> None:
    """Raise ValueError unless `name` can name a StreamQuery (the CRD's root rule, mirrored)."""
    if len(name) > MAX_NAME_LENGTH or not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"metadata.name {name!r}: must be a DNS-1035 label of at most {MAX_NAME_LENGTH} "
            "characters (lower-case letters, digits and '-', starting with a letter), because "
            "it names the query's Service and StatefulSet"
        )


NAME_RULE = {
    "rule": (
        f"self.metadata.name.size() <= {MAX_NAME_LENGTH} && "
        f"self.metadata.name.matches('{NAME_PATTERN}')"
    ),
    "message": (
        f"metadata.name must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters, "
        "because it names the query's Service and StatefulSet"
    ),
}

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_DURATION_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a duration string that matches DURATION_PATTERN ("1m30s" -> 90000)."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 250ms, 30s, 5m, 1h or 1m30s")
    return sum(
        int(amount) * _DURATION_UNIT_MS[unit] for amount, unit in _DURATION_PART.findall(text)
    )


_QUANTITY_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)")


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity such as "512Mi", "0.5", "100m" or "1e3"."""
    if not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    match = _QUANTITY.fullmatch(text)
    assert match is not None  # QUANTITY_PATTERN guarantees a leading number
    number, suffix = match.groups()
    if suffix in _QUANTITY_SUFFIX:
        return Decimal(number) * _QUANTITY_SUFFIX[suffix]
    return Decimal(text)  # a decimal exponent: "1e3", "2E-3"


def spec_json(spec: StreamQuerySpec) -> str:
    """The spec as the canonical JSON that status.lastReconciledSpec/lastStableSpec hold."""
    return spec.model_dump_json(by_alias=True, exclude_none=True)


def spec_from_json(text: str) -> StreamQuerySpec:
    """The inverse of spec_json."""
    return StreamQuerySpec.model_validate_json(text)
