"""The shared catalog end to end: a StreamSource declares the orders topic, one query holds
only its CSAS and runs Ready on real pods, a second one reads the first one's output by name,
and records flow through both on the real broker."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streamhouse_operator.models import streamquery as model
from streamhouse_operator.models import streamsource as catalog_model
from tests.e2e.conftest import Queries
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.kube import ControlPlane
from tests.harness.operator import OperatorProcess
from tests.harness.processes import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def catalog_crd(control_plane: ControlPlane) -> None:
    control_plane.kubectl(
        "apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "streamsource.yaml")
    )
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        f"crd/{catalog_model.PLURAL}.{model.GROUP}",
    )  # fmt: skip


def test_queries_chained_through_the_catalog_run_ready(
    catalog_crd: None,
    operator: OperatorProcess,
    queries: Queries,
    kafka_broker: KafkaBroker,
    pod_bootstrap: str,
    make_topic: Callable[..., str],
) -> None:
    orders = make_topic("catalog-orders")
    big_topic, huge_topic = f"{orders}-big", f"{orders}-huge"
    queries.apply(
        {
            "apiVersion": catalog_model.API_VERSION,
            "kind": catalog_model.KIND,
            "metadata": {"name": "orders"},
            "spec": {
                "sql": "CREATE STREAM orders (order_id BIGINT, amount DOUBLE) WITH "
                f"(kafka_topic = '{orders}', value_format = 'JSON');"
            },
        }
    )
    for name, sql in (
        ("big", f"CREATE STREAM big_orders WITH (kafka_topic = '{big_topic}') AS "
                "SELECT order_id, amount FROM orders WHERE amount > 1000;"),
        ("huge", f"CREATE STREAM huge_orders WITH (kafka_topic = '{huge_topic}') AS "
                 "SELECT * FROM big_orders WHERE amount > 100000;"),
    ):  # fmt: skip
        queries.apply(
            {
                "apiVersion": model.API_VERSION,
                "kind": model.KIND,
                "metadata": {"name": name},
                "spec": {"sql": sql, "kafka": {"bootstrapServers": pod_bootstrap}},
            }
        )
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for order_id, amount in ((1, 50.0), (2, 5000.0), (3, 250000.0), (4, 999999.5)):
        value = json.dumps({"order_id": order_id, "amount": amount}).encode()
        producer.produce(orders, value, str(order_id).encode())
    assert producer.flush(30) == 0

    big = queries.wait_running("big", replicas=1)["status"]
    huge = queries.wait_running("huge", replicas=1)["status"]
    assert big["catalogSources"] == ["orders"]
    assert huge["catalogSources"] == ["big_orders"]
    received = read_messages(kafka_broker.bootstrap, huge_topic, 2, 120)
    assert [json.loads(m.value() or b"null")["order_id"] for m in received] == [3, 4]
    assert len(read_messages(kafka_broker.bootstrap, big_topic, 3, 30)) == 3
