"""Specs that both the pydantic model and the real API server must judge alike.

Shared by tests/unit/operator/test_models.py (the model) and tests/k8s/test_crd.py (the CRD on
a real kube-apiserver), so a rule added to one side and forgotten on the other fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamhouse_operator.models import streamquery as model

BASE_SPEC: dict[str, Any] = {
    "sql": "CREATE STREAM high_value AS SELECT * FROM orders WHERE amount > 1000;",
    "kafka": {"bootstrapServers": "kafka:9092"},
}

# Every field set, every optional block present: accepted by both.
FULL_SPEC: dict[str, Any] = {
    **BASE_SPEC,
    "kafka": {
        "bootstrapServers": "kafka-0:9093,kafka-1:9093",
        "secretRef": {"name": "kafka-client"},
        "consumer": {"fetch.min.bytes": "1", "session.timeout.ms": "45000"},
        "producer": {"linger.ms": "20", "compression.type": "zstd"},
    },
    "compatibility": "default",
    "parallelism": 3,
    "state": "suspended",
    "upgradeMode": "reset",
    "restartNonce": 7,
    "processingGuarantee": "at-least-once",
    "errorPolicy": "dead-letter",
    "deadLetterTopic": "orders.dlq",
    "lateness": "1m30s",
    "storage": {"size": "5Gi", "storageClassName": "fast-ssd"},
    "resources": {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    },
    "image": "registry.example.com/streamhouse:0.1.0",
    "podTemplate": {
        "labels": {"team": "payments"},
        "annotations": {"example.com/owner": "payments@example.com"},
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "stream", "effect": "NoSchedule"}
        ],
        "serviceAccountName": "streamhouse-query",
        "priorityClassName": "high",
    },
    "udfs": {"configMapRef": {"name": "order-udfs"}},
    "schemaRegistry": {"url": "http://schema-registry:8081"},
    "networkPolicy": {"enabled": True},
    "deleteInternalTopics": True,
}


@dataclass(frozen=True)
class InvalidSpec:
    """A spec change that both sides reject, and the field path the API server names."""

    id: str
    spec: dict[str, Any] = field(default_factory=dict)
    field: str = ""
    message: str = ""  # also in both sides' messages, when set (an error code, say)

    def full(self) -> dict[str, Any]:
        return {**BASE_SPEC, **self.spec}


INVALID_SPECS = [
    InvalidSpec("negative-parallelism", {"parallelism": -1}, "spec.parallelism"),
    InvalidSpec("huge-parallelism", {"parallelism": 1025}, "spec.parallelism"),
    InvalidSpec("unknown-state", {"state": "paused"}, "spec.state"),
    InvalidSpec("unknown-upgrade-mode", {"upgradeMode": "savepoint"}, "spec.upgradeMode"),
    InvalidSpec("empty-sql", {"sql": ""}, "spec.sql"),
    InvalidSpec("sql-too-long", {"sql": "x" * (model.MAX_SQL_LENGTH + 1)}, "spec.sql"),
    InvalidSpec("no-bootstrap-servers", {"kafka": {}}, "spec.kafka.bootstrapServers"),
    InvalidSpec("negative-nonce", {"restartNonce": -1}, "spec.restartNonce"),
    InvalidSpec(
        "exactly-once", {"processingGuarantee": "exactly-once"}, "spec.processingGuarantee"
    ),
    InvalidSpec("unknown-error-policy", {"errorPolicy": "retry"}, "spec.errorPolicy"),
    InvalidSpec("bad-topic-name", {"deadLetterTopic": "bad topic!"}, "spec.deadLetterTopic"),
    # CEL, spanning fields: a dead-letter topic with a policy that never dead-letters.
    InvalidSpec(
        "dead-letter-topic-without-dead-letter-policy",
        {"errorPolicy": "skip", "deadLetterTopic": "orders.dlq"},
        "spec.deadLetterTopic",
    ),
    InvalidSpec("lateness-in-words", {"lateness": "30 seconds"}, "spec.lateness"),
    InvalidSpec("fractional-lateness", {"lateness": "1.5s"}, "spec.lateness"),
    InvalidSpec("storage-size-not-a-quantity", {"storage": {"size": "lots"}}, "spec.storage.size"),
    InvalidSpec(
        "cpu-not-a-quantity",
        {"resources": {"limits": {"cpu": "two"}}},
        "spec.resources.limits.cpu",
    ),
    # CEL, spanning fields: a limit below its request makes pods the API server refuses.
    InvalidSpec(
        "memory-limit-below-request",
        {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}},
        "spec.resources.limits",
    ),
    # CEL: secrets never go into the spec (they would land in env vars and status).
    InvalidSpec(
        "password-in-consumer-overrides",
        {"kafka": {"bootstrapServers": "k:9092", "consumer": {"sasl.password": "hunter2"}}},
        "spec.kafka.consumer",
    ),
    InvalidSpec(
        "group-id-in-producer-overrides",
        {"kafka": {"bootstrapServers": "k:9092", "producer": {"group.id": "mine"}}},
        "spec.kafka.producer",
    ),
    InvalidSpec(
        "bad-secret-name",
        {"kafka": {"bootstrapServers": "k:9092", "secretRef": {"name": "Bad_Name"}}},
        "spec.kafka.secretRef.name",
    ),
    InvalidSpec("udfs-without-configmap", {"udfs": {}}, "spec.udfs.configMapRef"),
    InvalidSpec(
        "registry-not-http",
        {"schemaRegistry": {"url": "ftp://registry"}},
        "spec.schemaRegistry.url",
    ),
    InvalidSpec(
        "unknown-toleration-operator",
        {"podTemplate": {"tolerations": [{"operator": "Maybe"}]}},
        "spec.podTemplate.tolerations[0].operator",
    ),
    InvalidSpec("image-with-spaces", {"image": "my image"}, "spec.image"),
    *(
        InvalidSpec(
            f"override-{side}-{key}-{value}".replace("_", "-").replace(".", "-"),
            {"kafka": {"bootstrapServers": "k:9092", side: {key: value}}},
            f"spec.kafka.{side}",
            code,
        )
        for side, key, value, code in [
            # Code loading (librdkafka CONFIGURATION.md): dlopen, callbacks, shell commands.
            ("consumer", "plugin.library.paths", "/tmp/evil.so", "E420"),
            ("producer", "plugin.library.paths", "monitoring-interceptor", "E420"),
            ("producer", "interceptors", "x", "E420"),
            ("consumer", "some.library.path", "x", "E420"),
            ("producer", "on_delivery", "os.system", "E420"),
            ("consumer", "oauthbearer_token_refresh_cb", "x", "E420"),
            ("producer", "error_cb", "x", "E420"),
            ("consumer", "kerberos.kinit.cmd", "sh -c id", "E420"),
            # Security settings belong in the Secret; plaintext would send its password.
            ("consumer", "security.protocol", "plaintext", "Secret"),
            ("producer", "enable.ssl.certificate.verification", "false", "Secret"),
            ("consumer", "https.ca.location", "/tmp", "Secret"),
            # The delivery guarantee: acks=all, idempotence, read_committed, own commits.
            ("producer", "acks", "0", "E421"),
            ("producer", "acks", "1", "E421"),
            ("producer", "acks", "0x0", "E421"),
            ("producer", "request.required.acks", "0", "E421"),
            ("producer", "enable.idempotence", "false", "E421"),
            ("producer", "enable.idempotence", "0", "E421"),
            ("consumer", "isolation.level", "read_uncommitted", "E421"),
            ("consumer", "isolation.level", "READ_UNCOMMITTED", "E421"),
            ("consumer", "enable.auto.commit", "true", "E421"),
            ("consumer", "auto.commit.enable", "t", "E421"),
        ]
    ),
]

# Overrides that keep the guarantee, in librdkafka's case-insensitive spellings: both accept.
ACCEPTED_OVERRIDES: list[dict[str, dict[str, str]]] = [
    {"producer": {"acks": "all", "enable.idempotence": "true", "log_level": "7"}},
    {"producer": {"acks": "-1", "request.required.acks": "ALL", "enable.idempotence": "T"}},
    {"consumer": {"isolation.level": "Read_Committed", "enable.auto.commit": "false"}},
    {"consumer": {"auto.commit.enable": "0", "debug": "consumer,fetch"}},
]

VALID_NAMES = ["orders", "a", "high-value-orders-2", "q" * model.MAX_NAME_LENGTH]
# Valid Kubernetes object names that cannot name a StreamQuery: a dot, a leading digit, too long.
INVALID_NAMES = ["orders.v2", "2fast", "q" * (model.MAX_NAME_LENGTH + 1)]
