"""`make demo`: the whole path a user takes, on local services unless a cluster is configured.

Starts the local Kafka broker and Kubernetes control plane (or uses STREAMHOUSE_KUBECONFIG /
STREAMHOUSE_BOOTSTRAP), installs the StreamQuery CRD, applies the example query, shows it with
kubectl, and produces sample orders into its source topic. It grows as the operator and runtime
land.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import yaml
from confluent_kafka import Producer
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane

REPO = Path(__file__).resolve().parents[1]


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


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
        producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
        rng = random.Random(7)
        for order_id in range(1, 21):
            order = {
                "order_id": order_id,
                "customer_id": f"c{rng.randint(1, 5)}",
                "amount": round(rng.uniform(10, 2500), 2),
                "status": "placed",
                "created_at": 1_700_000_000_000 + order_id * 1000,
            }
            producer.produce("orders", key=str(order_id), value=json.dumps(order))
            print(json.dumps(order))
        producer.flush(30)
        print(
            "\nThe operator and the runtime that turn this StreamQuery into a running "
            "StatefulSet arrive with the next issues; see README.md."
        )
        return 0
    finally:
        broker.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
