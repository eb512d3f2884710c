"""`make demo`: the whole path a user takes, on local services unless a cluster is configured.

Starts the local Kafka broker and Kubernetes control plane (or uses STREAMHOUSE_KUBECONFIG /
STREAMHOUSE_BOOTSTRAP), the test node agent that runs pods as local processes (the local
control plane has no kubelet), and the operator with its admission webhook. Then, as a user:
`kubectl apply` of a query with a typo is refused with its line:column; the example query is
applied, becomes a StatefulSet whose pod runs it, and `kubectl wait` sees it Ready; sample
orders go in, the derived stream comes out, and `kubectl get sq` shows it keeping up.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from confluent_kafka import Consumer, Producer
from tests.harness import pki
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane
from tests.harness.node_agent import NodeAgent
from tests.harness.operator import OperatorProcess, install_crd
from tests.harness.processes import free_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples/high-value-orders/streamquery.yaml"
NAME = "high-value-orders"


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def produce_orders(bootstrap: str) -> list[float]:
    """20 sample orders; returns their amounts. The producer is gone when this returns."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    rng = random.Random(7)
    amounts: list[float] = []
    for order_id in range(1, 21):
        order = {
            "order_id": order_id,
            "customer_id": f"c{rng.randint(1, 5)}",
            "amount": round(rng.uniform(10, 2500), 2),
            "status": "placed",
            "created_at": 1_700_000_000_000 + order_id * 1000,
        }
        producer.produce("orders", key=str(order_id), value=json.dumps(order))
        amounts.append(float(str(order["amount"])))
        print(json.dumps(order))
    producer.flush(30)
    return amounts


def show_derived(bootstrap: str, expected: int) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "demo-reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["high_value_orders"])
    deadline = time.monotonic() + 60
    shown = 0
    while shown < expected and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.5):
            value = message.value()
            if message.error() is None and value is not None:
                print(value.decode())
                shown += 1
    consumer.close()
    return shown


def webhook_env(workdir: Path) -> dict[str, str]:
    """The operator serves its validating webhook on 127.0.0.1 with a certificate of ours."""
    certificates = pki.generate(workdir / "webhook-pki")
    return {
        "STREAMHOUSE_WEBHOOK_ADDR": "127.0.0.1",
        "STREAMHOUSE_WEBHOOK_PORT": str(free_port()),
        "STREAMHOUSE_WEBHOOK_CERTFILE": str(certificates.server_cert),
        "STREAMHOUSE_WEBHOOK_KEYFILE": str(certificates.server_key),
        "STREAMHOUSE_WEBHOOK_CAFILE": str(certificates.ca_cert),
    }


def refuse_bad_sql(plane: ControlPlane, manifest: dict[str, object]) -> None:
    spec = dict(manifest["spec"])  # type: ignore[call-overload]
    spec["sql"] = spec["sql"].replace("WHERE amount", "WHERE amout")
    bad = {**manifest, "spec": spec}
    deadline = time.monotonic() + 60
    while True:  # the API server calls a newly registered webhook within moments
        try:
            plane.kubectl("apply", "--dry-run=server", "-f", "-", input_text=yaml.safe_dump(bad))
        except subprocess.CalledProcessError as refused:
            print(refused.stderr.strip())
            return
        if time.monotonic() > deadline:
            print("(the webhook is not answering yet; reconcile would mark it FAILED instead)")
            return
        time.sleep(0.5)


def main() -> int:
    banner("starting services (cached builds; first run on a machine builds them)")
    external_kube = os.environ.get("STREAMHOUSE_KUBECONFIG")
    plane = ControlPlane.existing(Path(external_kube)) if external_kube else ControlPlane.start()
    external_kafka = os.environ.get("STREAMHOUSE_BOOTSTRAP")
    broker = (
        KafkaBroker(bootstrap=external_kafka, workdir=REPO, owns_workdir=False)
        if external_kafka
        else KafkaBroker.start()
    )
    workdir = Path(tempfile.mkdtemp(prefix="streamhouse-demo-"))
    agent = None if external_kube else NodeAgent.start(plane.kubeconfig, workdir / "node")
    operator = None
    try:
        print(f"kube-apiserver: {plane.server}\nkafka:          {broker.bootstrap}")
        banner("kubectl apply -f crds/streamquery.yaml; streamhouse operator")
        install_crd(plane)
        operator = OperatorProcess(
            plane,
            "default",
            workdir / "operator.log",
            {} if external_kube else webhook_env(workdir),
        ).start()
        print(f"operator log: {operator.log_file}")

        manifest = yaml.safe_load(EXAMPLE.read_text())
        manifest["spec"]["kafka"]["bootstrapServers"] = broker.bootstrap
        if not external_kube:
            banner("kubectl apply of the query with a typo (amout): refused at apply time")
            refuse_bad_sql(plane, manifest)

        banner(f"kubectl apply -f {EXAMPLE.relative_to(REPO)}")
        if not external_kafka:
            broker.create_topic("orders", partitions=2)
        print(plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest)).strip())
        banner(f"kubectl wait --for=condition=Ready sq/{NAME}")
        print(plane.kubectl("wait", "--for=condition=Ready", "--timeout=180s", f"sq/{NAME}"))
        print(plane.kubectl("get", "statefulsets,pods,sq"))

        banner("producing 20 sample orders to topic 'orders'")
        amounts = produce_orders(broker.bootstrap)

        banner("the derived stream 'high_value_orders' (amount > 1000), written by the pod")
        expected = sum(1 for amount in amounts if amount > 1000)
        shown = show_derived(broker.bootstrap, expected)
        print(f"\n{shown} of {len(amounts)} orders passed the filter.")

        banner("kubectl get sq (lag and rate are scraped from the pod's /metrics)")
        time.sleep(3)
        print(plane.kubectl("get", "sq"))
        return 0 if shown == expected else 1
    finally:
        if operator is not None:
            operator.stop()
        if agent is not None:
            agent.stop()
        broker.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
