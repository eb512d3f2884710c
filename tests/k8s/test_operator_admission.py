"""`kubectl apply` of a StreamQuery with bad SQL is refused by the operator's validating
webhook (kopf, in-process, serving HTTPS on 127.0.0.1) with the SQL's line:column error."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from streamhouse_operator.models import streamquery as model
from tests.harness import pki
from tests.harness.kube import ControlPlane
from tests.harness.processes import free_port, start_process, stop_process, wait_until

pytestmark = pytest.mark.k8s

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "streamquery.yaml"
WEBHOOK_CONFIGURATION = "streamhouse.io"
BAD_SQL = (
    "CREATE STREAM orders (order_id BIGINT, amount DECIMAL(10,2))\n"
    "  WITH (kafka_topic = 'orders');\n"
    "CREATE STREAM high AS SELECT * FROM orders WHERE amout > 1000;\n"
)


def _manifest(name: str, sql: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{model.GROUP}/{model.VERSION}",
            "kind": model.KIND,
            "metadata": {"name": name},
            "spec": {"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}},
        }
    )


@pytest.fixture
def webhook(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[None]:
    """The operator as its own process (`streamhouse operator`), serving the webhook."""
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    certificates = pki.generate(tmp_path / "webhook-pki")  # a serving cert for 127.0.0.1
    environment = {
        "KUBECONFIG": str(control_plane.kubeconfig),
        "STREAMHOUSE_WEBHOOK_ADDR": "127.0.0.1",
        "STREAMHOUSE_WEBHOOK_PORT": str(free_port()),
        "STREAMHOUSE_WEBHOOK_CERTFILE": str(certificates.server_cert),
        "STREAMHOUSE_WEBHOOK_KEYFILE": str(certificates.server_key),
        "STREAMHOUSE_WEBHOOK_CAFILE": str(certificates.ca_cert),
    }
    registrations = client.AdmissionregistrationV1Api(kube_api)
    log = tmp_path / "operator.log"
    process = start_process(
        [sys.executable, "-m", "streamhouse_runtime.cli", "operator", "--namespace", namespace],
        log,
        environment,
    )

    def registered() -> bool:
        found = registrations.read_validating_webhook_configuration(WEBHOOK_CONFIGURATION)
        return bool(found.webhooks)

    try:
        wait_until(registered, 60, "the webhook configuration", process, log)
        yield
    finally:
        stop_process(process)
        try:
            registrations.delete_validating_webhook_configuration(WEBHOOK_CONFIGURATION)
        except ApiException as error:
            if error.status != 404:
                raise


def test_kubectl_apply_rejects_bad_sql_with_its_line_and_column(
    webhook: None, control_plane: ControlPlane, namespace: str
) -> None:
    deadline = time.monotonic() + 30
    while True:  # the API server starts calling a new webhook within moments
        try:
            control_plane.kubectl(
                "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                input_text=_manifest("bad", BAD_SQL),
            )  # fmt: skip
        except subprocess.CalledProcessError as refused:
            message = refused.stderr
            break
        assert time.monotonic() < deadline, "the webhook never refused the bad SQL"
        time.sleep(0.5)
    assert "denied the request" in message
    assert "spec.sql:3:50: error[E102]: unknown column 'amout' in orders" in message

    good = BAD_SQL.replace("amout", "amount")
    output = control_plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input_text=_manifest("good", good)
    )
    assert "streamquery.streamhouse.io/good created" in output

    # The front end's hardening reaches `kubectl apply`: foreign UDF code, stray commas and
    # Kafka-internal topics are refused by the webhook with their codes.
    for name, sql, expected in HOSTILE:
        with pytest.raises(subprocess.CalledProcessError) as denied:
            control_plane.kubectl(
                "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                input_text=_manifest(name, sql),
            )  # fmt: skip
        assert "denied the request" in denied.value.stderr
        assert expected in denied.value.stderr, denied.value.stderr


HOSTILE = [
    (
        "shell-udf",
        "CREATE STREAM orders (order_id BIGINT, note VARCHAR) WITH (kafka_topic = 'orders');\n"
        "CREATE FUNCTION sh(x VARCHAR) RETURNS INT LANGUAGE PYTHON AS 'os:system';\n"
        "CREATE STREAM out AS SELECT sh(note) AS n FROM orders;\n",
        "spec.sql:2:62: error[E414]",
    ),
    (
        "stray-comma",
        BAD_SQL.replace("SELECT *", "SELECT order_id,, amount").replace("amout", "amount"),
        "spec.sql:3:39: error[E001]",
    ),
    (
        "internal-topic",
        BAD_SQL.replace("'orders'", "'__consumer_offsets'"),
        "spec.sql:2:23: error[E411]",
    ),
]
