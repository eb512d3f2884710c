"""The StreamSource custom resource (the shared catalog): one `CREATE STREAM` or `CREATE TABLE`
declaration, read by every StreamQuery of its namespace. `crds/streamsource.yaml` is generated
from these models.

A declaration is validated like a query (admission webhook and reconcile, the SQL front end's
coded errors). Status says what it declares and which queries use it. A query's output is
registered as a StreamSource automatically (label OUTPUT_OF_LABEL, owned by the query).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from streamhouse_operator.models.status import Condition
from streamhouse_operator.models.streamquery import GROUP, MAX_SQL_LENGTH, VERSION

KIND = "StreamSource"
PLURAL = "streamsources"
SINGULAR = "streamsource"
SHORT_NAMES = ["ss"]
API_VERSION = f"{GROUP}/{VERSION}"
# On the StreamSource that registers a query's output: the query's name.
OUTPUT_OF_LABEL = "streamhouse.io/output-of"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StreamSourceSpec(_Model):
    """One shared stream or table."""

    sql: str = Field(
        min_length=1,
        max_length=MAX_SQL_LENGTH,
        description="Exactly one CREATE STREAM or CREATE TABLE declaration with columns and "
        "WITH (kafka_topic, value_format, key, timestamp, ...); the SQL name it declares is "
        "the name queries read.",
    )
    description: str | None = Field(
        default=None, max_length=4096, description="What the stream or table holds, for humans."
    )


class StreamSourceStatus(_Model):
    """What the operator found. Written only by the operator."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    observed_generation: int | None = Field(default=None, ge=0, description="Last validated.")
    declares: str | None = Field(
        default=None, max_length=512, description="STREAM or TABLE and its SQL name."
    )
    topic: str | None = Field(default=None, max_length=249, description="Kafka topic.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        description="Validated.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    used_by: list[Annotated[str, StringConstraints(max_length=253)]] | None = Field(
        default=None, max_length=1024, description="StreamQueries that read this declaration."
    )
