"""`make demo`: the whole path a user takes, on local services unless a cluster is configured.

Starts the local Kafka broker and Kubernetes control plane (or uses STREAMHOUSE_KUBECONFIG /
STREAMHOUSE_BOOTSTRAP), installs the StreamQuery CRD, applies the example query, shows it with
kubectl, produces sample orders, runs the query with `streamhouse run` (as a pod would) and
prints the derived stream. Once the operator lands, it deploys the query instead.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml
from confluent_kafka import Consumer, Producer
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane
from tests.harness.query_process import QueryProcess

REPO = Path(__file__).resolve().parents[1]


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
    try:
        print(f"kube-apiserver: {plane.server}\nkafka:          {broker.bootstrap}")

        banner("kubectl apply -f crds/streamquery.yaml")
        print(plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds/streamquery.yaml")))
        plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/streamqueries.streamhouse.io",
        )

        banner("kubectl apply -f examples/high-value-orders/streamquery.yaml")
        manifest = yaml.safe_load(
            (REPO / "examples/high-value-orders/streamquery.yaml").read_text()
        )
        manifest["spec"]["kafka"]["bootstrapServers"] = broker.bootstrap
        print(plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(manifest)))

        banner("kubectl get streamqueries")
        print(plane.kubectl("get", "sq"))

        banner("producing 20 sample orders to topic 'orders'")
        if not external_kafka:
            broker.create_topic("orders", partitions=2)
        amounts = produce_orders(broker.bootstrap)

        banner("streamhouse run (the process each query pod runs), reading 'orders'")
        workdir = Path(tempfile.mkdtemp(prefix="streamhouse-demo-"))
        sql_file = workdir / "query.sql"
        sql_file.write_text(manifest["spec"]["sql"])
        query = QueryProcess(sql_file, workdir, broker.bootstrap, "demo").start()
        try:
            banner("the derived stream 'high_value_orders' (amount > 1000)")
            consumer = Consumer(
                {"bootstrap.servers": broker.bootstrap, "group.id": "demo-reader",
                 "auto.offset.reset": "earliest"}
            )  # fmt: skip
            consumer.subscribe(["high_value_orders"])
            deadline = time.monotonic() + 30
            shown = 0
            expected = sum(1 for amount in amounts if amount > 1000)
            while shown < expected and time.monotonic() < deadline:
                for message in consumer.consume(100, 0.5):
                    value = message.value()
                    if message.error() is None and value is not None:
                        print(value.decode())
                        shown += 1
            consumer.close()
            print(f"\n{shown} of {len(amounts)} orders passed the filter.")
        finally:
            query.stop()
        print(
            "\nNext: the operator turns the StreamQuery itself into a StatefulSet running "
            "this process (see README.md)."
        )
        return 0
    finally:
        broker.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
