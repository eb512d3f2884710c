"""Request and response bodies of the REST API, as pydantic models.

The OpenAPI document (/api/v1/openapi.json) is generated from these and from the StreamQuery
spec and status models the CRD is generated from, so the API, the CRD and the validation of
both describe one shape. A create request is a StreamQuery spec plus its name and namespace.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models.status import Condition, StreamQueryStatus

MAX_PAGE = 500
DEFAULT_PAGE = 100


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CreateQuery(model.StreamQuerySpec):
    """POST /queries: the spec of the StreamQuery to create, with its name and namespace.
    `kafka` may be left out when the API is started with a default bootstrap server."""

    name: str = Field(
        min_length=1,
        max_length=model.MAX_NAME_LENGTH,
        pattern=model.NAME_PATTERN,
        description="metadata.name of the StreamQuery (names its Service and StatefulSet).",
    )
    namespace: str = Field(min_length=1, max_length=63, description="Namespace of the query.")


class PatchQuery(_Body):
    """PATCH /queries/{namespace}/{name}: the fields to change (a merge patch of the spec)."""

    sql: str | None = Field(default=None, min_length=1, max_length=model.MAX_SQL_LENGTH)
    state: model.QueryState | None = Field(default=None, description="suspend or resume.")
    parallelism: int | None = Field(default=None, ge=0, le=1024, description="scale.")
    upgrade_mode: model.UpgradeMode | None = None
    error_policy: model.ErrorPolicy | None = None
    restart_nonce: int | None = None


class SqlText(_Body):
    """POST /validate and /explain."""

    sql: str = Field(min_length=1, max_length=model.MAX_SQL_LENGTH)


class Problem(_Body):
    """One error: a stable code, a message and where (SQL line:column, or a field path)."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    field: str | None = Field(default=None, description="Field path, e.g. spec.sql.")
    rendered: str | None = Field(
        default=None, description="The one-line form `kubectl apply` prints for it."
    )
    missing_verb: str | None = Field(default=None, description="403: the RBAC verb missing.")


class ErrorBody(_Body):
    error: Problem
    errors: list[Problem] = Field(default_factory=list, description="Every problem found.")


class ValidateResult(_Body):
    valid: bool
    errors: list[Problem] = Field(default_factory=list)
    kind: str | None = Field(default=None, description="STREAM or TABLE, when valid.")
    summary: str | None = Field(default=None, description="The plan in one line, when valid.")


class PlanNode(_Body):
    operator: str
    details: Any = None
    schema_: list[dict[str, str]] = Field(default_factory=list, alias="schema")
    key: list[str] = Field(default_factory=list)
    state: list[dict[str, str]] = Field(default_factory=list)
    inputs: list[PlanNode] = Field(default_factory=list)


class ExplainResult(_Body):
    kind: str
    name: str | None = None
    text: str = Field(description="The plan as `streamhouse explain` prints it.")
    plan: PlanNode


class LiveFigures(_Body):
    """Scraped from the pods by the operator (status), refreshed every observe interval."""

    lag: int | None = None
    input_rate: float | None = None
    output_rate: float | None = None
    dead_lettered: int | None = None
    watermark: str | None = None


class Query(_Body):
    """A StreamQuery as the API shows it."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: str | None = None
    kind: str | None = Field(default=None, description="STREAM or TABLE (from the SQL).")
    lifecycle_state: str | None = None
    ready: bool = False
    replicas: int | None = None
    ready_replicas: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    figures: LiveFigures = Field(default_factory=LiveFigures)
    spec: model.StreamQuerySpec | dict[str, Any]
    status: StreamQueryStatus | dict[str, Any] = Field(default_factory=dict)


class QueryList(_Body):
    items: list[Query]
    continue_: str | None = Field(default=None, alias="continue")


class ResultRow(_Body):
    key: list[Any]
    window: dict[str, int] | None = None
    row: dict[str, Any]


class ResultPage(_Body):
    """GET .../results: one page of a TABLE query's rows, as of the pods' last checkpoint."""

    rows: list[ResultRow]
    key_columns: list[str] = Field(default_factory=list)
    windowed: bool = False
    continue_: str | None = Field(
        default=None, alias="continue", description="Pass back to get the next page."
    )
    pods: int = Field(description="Query pods asked.")


class TailRecord(_Body):
    partition: int
    offset: int
    timestamp: int | None = None
    key: Any = None
    value: Any = None


class TailPage(_Body):
    """GET .../tail: the last records of a query's output topic."""

    topic: str
    records: list[TailRecord]
