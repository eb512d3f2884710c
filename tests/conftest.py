"""Fixtures shared by the whole test run.

Services start lazily, once per session, only when a test asks for them:
- `kafka_broker` / `kafka_bootstrap`: a real Apache Kafka broker (KRaft) on 127.0.0.1, or the
  broker named by STREAMHOUSE_TEST_BOOTSTRAP;
- `control_plane` / `kubeconfig`: a real etcd + kube-apiserver + kube-controller-manager, or the
  cluster named by STREAMHOUSE_TEST_KUBECONFIG (kind started from kind-config.yaml, say).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane

TIERS = ("unit", "kafka", "k8s", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so `-m` selections never miss one."""
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if len(tiers) != 1:
            raise pytest.UsageError(f"{item.nodeid} must carry exactly one of {TIERS}, has {tiers}")


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    external = os.environ.get("STREAMHOUSE_TEST_BOOTSTRAP")
    if external:
        yield KafkaBroker(bootstrap=external, workdir=Path("."), owns_workdir=False)
        return
    broker = KafkaBroker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def make_topic(kafka_broker: KafkaBroker) -> Callable[..., str]:
    """Create a uniquely named topic: `make_topic("orders", partitions=3)`."""

    def create(prefix: str = "topic", partitions: int = 1, **config: str) -> str:
        return kafka_broker.create_topic(unique_name(prefix), partitions, config)

    return create


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    external = os.environ.get("STREAMHOUSE_TEST_KUBECONFIG")
    if external:
        yield ControlPlane.existing(Path(external))
        return
    plane = ControlPlane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kube_api(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


@pytest.fixture
def namespace(kube_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = unique_name("test")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


from tests.harness.node_agent import NodeAgent  # noqa: E402  (kept with its fixture below)


@pytest.fixture(scope="session")
def node_agent(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeAgent]:
    """A node agent that schedules Pods onto its Node and runs them as local processes.

    Session-scoped: tests share its Node ("streamhouse-local") and keep apart by namespace.
    Processes must bind to $STREAMHOUSE_BIND_ADDRESS (their Pod IP); see
    tests/harness/node_agent.py. Only for the local control plane: a cluster named by
    STREAMHOUSE_TEST_KUBECONFIG has a scheduler and kubelets of its own.
    """
    if control_plane.workdir is None:
        pytest.skip("the node agent runs Pods only on the local control plane")
    agent = NodeAgent.start(control_plane.kubeconfig, tmp_path_factory.mktemp("node-agent"))
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="session")
def schema_registry() -> Iterator[str]:
    """Base URL of a Confluent-compatible schema registry API (Apicurio's /apis/ccompat/v7), or
    the one named by STREAMHOUSE_TEST_SCHEMA_REGISTRY."""
    from tests.harness.registry import SchemaRegistryServer

    external = os.environ.get("STREAMHOUSE_TEST_SCHEMA_REGISTRY")
    if external:
        yield external.rstrip("/")
        return
    server = SchemaRegistryServer.start()
    try:
        yield server.url
    finally:
        server.stop()
