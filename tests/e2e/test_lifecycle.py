"""One StreamQuery through its whole life, against the real control plane, controllers, broker
and node agent: create, a compatible SQL edit with an operator killed mid-reconcile, an
incompatible edit refused under last-state, the same edit under upgradeMode stateless, scaling
1 -> 2 -> 1, a malformed record, suspend and resume, and delete.

The query is a running total per customer grouped by a value column, so its rows go through a
repartition topic into RocksDB state with a changelog: every step checks the totals in the
output topic against totals computed here, so nothing may be lost or counted twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Producer
from kubernetes import client

from tests.e2e.conftest import Queries
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.operator import OperatorProcess
from tests.harness.processes import wait_until

pytestmark = pytest.mark.e2e

NAME = "totals"
CUSTOMERS = 5
DDL = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2),
  status VARCHAR, created_at TIMESTAMP)
  WITH (kafka_topic = '{source}', value_format = 'JSON', timestamp = 'created_at');
"""
QUERY = (
    "CREATE TABLE totals WITH (kafka_topic = '{output}') AS SELECT customer_id, "
    "COUNT(*) AS n, {aggregate}(amount) AS total FROM orders GROUP BY customer_id{having};"
)
Totals = dict[str, tuple[int, Decimal]]


def sql(source: str, output: str, aggregate: str = "SUM", having: str = "") -> str:
    query = QUERY.format(output=output, aggregate=aggregate, having=having)
    return DDL.format(source=source) + query


def amount(order_id: int) -> Decimal:
    return Decimal(order_id % 97) + Decimal("0.25")


def expected(order_ids: Iterable[int], aggregate: str) -> Totals:
    totals: Totals = {}
    for order_id in order_ids:
        customer = f"c{order_id % CUSTOMERS}"
        n, total = totals.get(customer, (0, Decimal(0)))
        value = amount(order_id)
        combined = total + value if aggregate == "SUM" else max(total, value)
        totals[customer] = (n + 1, combined)
    return totals


class Orders:
    """Produces orders to the source topic and reads the latest total per customer back."""

    def __init__(self, bootstrap: str, source: str, output: str) -> None:
        self.bootstrap, self.source, self.output = bootstrap, source, output
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.next_id = 0

    def send(self, count: int) -> range:
        ids = range(self.next_id, self.next_id + count)
        for order_id in ids:
            value = (
                f'{{"order_id": {order_id}, "customer_id": "c{order_id % CUSTOMERS}", '
                f'"amount": {amount(order_id)}, "status": "placed", '
                f'"created_at": {1_700_000_000_000 + order_id * 1000}}}'
            )
            self.producer.produce(self.source, value.encode(), str(order_id).encode())
        assert self.producer.flush(30) == 0
        self.next_id += count
        return ids

    def send_raw(self, value: bytes) -> None:
        self.producer.produce(self.source, value, b"bad")
        assert self.producer.flush(30) == 0

    def latest(self) -> Totals:
        latest: Totals = {}
        for message in read_messages(self.bootstrap, self.output, 10**9, timeout_s=2):
            value = json.loads(message.value() or b"null", parse_float=Decimal)
            if value is not None:
                latest[value["customer_id"]] = (value["n"], Decimal(value["total"]))
        return latest

    def wait_for(self, totals: Totals, what: str) -> None:
        deadline = time.monotonic() + 120
        while (latest := self.latest()) != totals and time.monotonic() < deadline:
            time.sleep(0.5)
        assert latest == totals, what


def _conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}


def test_a_query_through_its_whole_life(
    operator: OperatorProcess,
    queries: Queries,
    kafka_broker: KafkaBroker,
    pod_bootstrap: str,
    make_topic: Callable[..., str],
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    source = make_topic("orders", partitions=2)
    output = f"{source}-totals"
    orders = Orders(kafka_broker.bootstrap, source, output)
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    manifest = {
        "apiVersion": "streamhouse.io/v1alpha1",
        "kind": "StreamQuery",
        "metadata": {"name": NAME},
        "spec": {
            "sql": sql(source, output),
            "kafka": {"bootstrapServers": pod_bootstrap},
            "parallelism": 1,
            "upgradeMode": "last-state",
            "deleteInternalTopics": True,
        },
    }

    # Create: the query runs and its totals are exact.
    queries.apply(manifest)
    created = queries.wait_running(NAME, replicas=1)
    query_id = created["status"]["queryId"]
    first = orders.send(200)
    orders.wait_for(expected(first, "SUM"), "totals after create")

    # A compatible edit (HAVING filters what is emitted, not what is stored), with the
    # operator killed once it has written its intent and started again: it converges, the
    # state is kept.
    generation = queries.patch(NAME, {"sql": sql(source, output, having=" HAVING COUNT(*) > 0")})
    queries.wait(
        NAME,
        lambda body: (body.get("status") or {}).get("lifecycleState") == "UPGRADING",
        "the upgrade's intent in status",
    )
    operator.kill()
    operator.start()
    upgraded = queries.wait_running(NAME, replicas=1)
    assert upgraded["metadata"]["generation"] == generation
    assert upgraded["status"]["queryId"] == query_id
    statefulsets = apps.list_namespaced_stateful_set(namespace).items
    assert [s.metadata.name for s in statefulsets] == [NAME]
    config = core.read_namespaced_config_map(f"{NAME}-query", namespace)
    assert "HAVING COUNT(*) > 0" in config.data["query.sql"]
    second = orders.send(100)
    orders.wait_for(expected([*first, *second], "SUM"), "state kept through the upgrade")

    # Scale 1 -> 2 with kubectl scale (the scale subresource maps to parallelism): each pod
    # takes its partitions' state along, so the totals go on exactly.
    queries.kubectl("scale", f"sq/{NAME}", "--replicas=2")
    queries.wait_running(NAME, replicas=2)
    third = orders.send(120)
    orders.wait_for(expected([*first, *second, *third], "SUM"), "exact totals on two pods")

    # An incompatible edit under last-state is refused and nothing is touched.
    pod_uid = core.read_namespaced_pod(f"{NAME}-0", namespace).metadata.uid
    incompatible = sql(source, output, aggregate="MAX")
    generation = queries.patch(NAME, {"sql": incompatible})
    refused = queries.wait(
        NAME,
        lambda body: (
            (body.get("status") or {}).get("observedGeneration") == generation
            and body["status"].get("lifecycleState") == "FAILED"
        ),
        "the refusal",
    )
    conditions = _conditions(refused)
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "UpgradeRefused"
    assert refused["status"]["error"]["code"] == "STATE_INCOMPATIBLE"
    assert "MAX(amount)" in refused["status"]["error"]["message"]
    config = core.read_namespaced_config_map(f"{NAME}-query", namespace)
    assert "SUM(amount)" in config.data["query.sql"]
    assert core.read_namespaced_pod(f"{NAME}-0", namespace).metadata.uid == pod_uid

    # The same edit under upgradeMode stateless, on two pods: every old pod stops before a
    # new one starts, with empty state, at the same input position.
    queries.patch(NAME, {"upgradeMode": "stateless"})
    fresh = queries.wait_running(NAME, replicas=2)
    assert fresh["status"]["queryId"] == query_id
    assert fresh["status"]["stateId"] != query_id
    assert "error" not in fresh["status"]
    since_upgrade = list(orders.send(100))
    orders.wait_for(expected(since_upgrade, "MAX"), "a fresh state from the group's position")

    # Scale 2 -> 1: the pod that gets partition 1 back restores it from the changelog.
    queries.kubectl("scale", f"sq/{NAME}", "--replicas=1")
    queries.wait_running(NAME, replicas=1)
    since_upgrade += orders.send(80)
    orders.wait_for(expected(since_upgrade, "MAX"), "exact totals back on one pod")

    # A malformed record goes to the dead-letter topic, processing goes on, status counts it.
    orders.send_raw(b'{"order_id": "not a number", "amount": ')
    since_upgrade += orders.send(10)
    orders.wait_for(expected(since_upgrade, "MAX"), "processing after a bad record")
    live = queries.wait(
        NAME,
        lambda body: (
            (body.get("status") or {}).get("deadLettered") == 1 and body["status"].get("lag") == 0
        ),
        "deadLettered 1 and lag 0 in status",
    )
    assert live["status"]["watermark"].startswith("2023-11-")
    dead = read_messages(kafka_broker.bootstrap, f"streamhouse-{query_id}-dlq", 1, 30)
    assert [m.value() for m in dead] == [b'{"order_id": "not a number", "amount": ']

    # Suspend: no pods, volumes kept; input produced meanwhile is processed after resume.
    queries.patch(NAME, {"state": "suspended"})
    queries.wait(
        NAME,
        lambda body: (
            (body.get("status") or {}).get("lifecycleState") == "SUSPENDED"
            and _conditions(body).get("Ready", {}).get("status") == "True"
        ),
        "SUSPENDED",
    )
    wait_until(
        lambda: not core.list_namespaced_pod(namespace).items, 60, "pods gone while suspended"
    )
    assert core.list_namespaced_persistent_volume_claim(namespace).items, "volumes kept"
    since_upgrade += orders.send(50)
    queries.patch(NAME, {"state": "running"})
    queries.wait_running(NAME, replicas=1)
    orders.wait_for(expected(since_upgrade, "MAX"), "resumed from the kept offsets and state")

    # Delete: the children go with the owner, the finalizer deletes the internal topics.
    state_id = fresh["status"]["stateId"]
    internal_before = [
        t for t in kafka_broker.admin().list_topics(timeout=10).topics if state_id in t
    ]
    assert internal_before, "the stateful stage has internal topics"
    queries.kubectl("delete", f"sq/{NAME}", "--wait=true", "--timeout=60s")
    assert queries.get(NAME) is None

    def children_gone() -> bool:
        return not (
            apps.list_namespaced_stateful_set(namespace).items
            or core.list_namespaced_config_map(
                namespace, label_selector="app.kubernetes.io/instance=totals"
            ).items
            or core.list_namespaced_persistent_volume_claim(namespace).items
            or core.list_namespaced_pod(namespace).items
        )

    wait_until(children_gone, 90, "children garbage-collected")
    topics = kafka_broker.admin().list_topics(timeout=10).topics
    assert not [t for t in topics if state_id in t or f"streamhouse-{query_id}-stage" in t]
    assert f"streamhouse-{query_id}-dlq" in topics, "dead letters are the user's, kept"
