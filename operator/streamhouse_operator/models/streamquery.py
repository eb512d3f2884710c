"""The StreamQuery custom resource, as pydantic models. `crds/` is generated from these."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

GROUP = "streamhouse.io"
VERSION = "v1alpha1"
KIND = "StreamQuery"
PLURAL = "streamqueries"
SINGULAR = "streamquery"
SHORT_NAMES = ["sq"]

MAX_SQL_LENGTH = 262_144


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class QueryState(StrEnum):
    """Desired run state: intent only, what the user wants."""

    RUNNING = "running"
    SUSPENDED = "suspended"


class UpgradeMode(StrEnum):
    """What happens to state and offsets when the SQL changes."""

    STATELESS = "stateless"
    LAST_STATE = "last-state"
    RESET = "reset"


class KafkaSpec(_Model):
    """How the query's pods reach Kafka."""

    bootstrap_servers: str = Field(
        alias="bootstrapServers",
        min_length=1,
        max_length=2048,
        description="Comma-separated host:port list of the Kafka brokers.",
    )


class StreamQuerySpec(_Model):
    """What the user wants to run."""

    sql: str = Field(
        min_length=1,
        max_length=MAX_SQL_LENGTH,
        description="The DDL of the sources plus one persistent query.",
    )
    kafka: KafkaSpec
    parallelism: int = Field(default=1, ge=0, le=1024, description="Number of query pods.")
    state: QueryState = Field(default=QueryState.RUNNING, description="running or suspended.")
    upgrade_mode: UpgradeMode = Field(
        default=UpgradeMode.LAST_STATE,
        alias="upgradeMode",
        description="stateless, last-state (keep state and offsets) or reset.",
    )
    restart_nonce: int | None = Field(
        default=None,
        alias="restartNonce",
        ge=0,
        description="Change it to restart every pod of the query.",
    )
