"""Runtime settings: every one readable from the environment (how the operator configures pods)
or from a YAML/JSON file given with `--config` (same names, lower-case, without the prefix)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PREFIX = "STREAMHOUSE_"


@dataclass
class RuntimeConfig:
    bootstrap_servers: str = "localhost:9092"
    query_file: str = "/etc/streamhouse/query.sql"
    query_id: str = ""  # identity of the consumer group (and default of state_id)
    # Identity of the state: internal topics (changelogs, repartitions). A new state_id with the
    # same query_id starts with empty state where the consumer group left off.
    state_id: str = ""
    data_dir: str = "/var/lib/streamhouse"
    replicas: int = 1
    ordinal: int = -1  # -1: from the pod name (StatefulSet pods are named <name>-<ordinal>)
    bind_address: str = "0.0.0.0"  # inside a pod every interface is the pod's own
    metrics_port: int = 9090
    error_policy: str = "dead-letter"
    late_policy: str = "drop"
    dead_letter_topic: str = ""
    lateness_ms: int = 0
    idle_timeout_ms: int = 30_000
    checkpoint_interval_ms: int = 1_000
    batch_size: int = 2_000
    poll_timeout_ms: int = 20
    memory_limit_bytes: int = 512 << 20
    schema_registry_url: str = ""
    kafka_config_file: str = ""  # librdkafka properties (SASL/TLS), e.g. a mounted Secret
    consumer_config: dict[str, str] = field(default_factory=dict)
    producer_config: dict[str, str] = field(default_factory=dict)
    udf_path: str = ""
    reset_state: bool = False
    # Whose conventions the query follows (sql/compatibility.py); the StreamQuery's
    # spec.compatibility, set by the operator.
    compatibility: str = "default"

    def resolved_ordinal(self) -> int:
        if self.ordinal >= 0:
            return self.ordinal
        name = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or ""
        match = re.search(r"-(\d+)$", name)
        return int(match.group(1)) if match else 0

    def kafka_settings(self) -> dict[str, str | int | float | bool]:
        """Security and client settings shared by consumer and producer."""
        settings: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers
        }
        if self.kafka_config_file:
            for line in Path(self.kafka_config_file).read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    settings[key.strip()] = value.strip()
        return settings


def _coerce(value: Any, template: Any) -> Any:
    if isinstance(template, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if isinstance(template, int):
        return int(value)
    if isinstance(template, dict):
        return json.loads(value) if isinstance(value, str) else dict(value)
    return str(value)


def load_config(path: str | None = None, environ: dict[str, str] | None = None) -> RuntimeConfig:
    """Defaults, then the file, then the environment (the environment wins)."""
    config = RuntimeConfig()
    values: dict[str, Any] = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        values.update({str(k).lower().replace("-", "_"): v for k, v in loaded.items()})
    env = os.environ if environ is None else environ
    for item in fields(RuntimeConfig):
        name = PREFIX + item.name.upper()
        if name in env:
            values[item.name] = env[name]
    known = {item.name for item in fields(RuntimeConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    for name, value in values.items():
        setattr(config, name, _coerce(value, getattr(config, name)))
    return config
