"""The per-query NetworkPolicy builder, and when a query gets one."""

from __future__ import annotations

from typing import Any

import pytest

from streamhouse_operator import builders
from streamhouse_operator.builders import QueryContext
from streamhouse_operator.builders.networkpolicy import Endpoint, kafka_endpoints, registry_endpoint
from streamhouse_operator.models import streamquery as model
from streamhouse_operator.policy import Policy
from tests.unit.operator.spec_cases import BASE_SPEC

pytestmark = pytest.mark.unit

UID = "0b5d6e2c-6f0c-4a57-9a3e-2f1f6f1f9c11"


def context(**spec: Any) -> QueryContext:
    return QueryContext(
        name="orders",
        namespace="shop",
        uid=UID,
        spec=model.StreamQuerySpec.model_validate({**BASE_SPEC, **spec}),
        image="streamhouse:0.1.0",
    )


@pytest.mark.parametrize(
    ("bootstrap", "endpoints"),
    [
        ("kafka:9092", [Endpoint("kafka", 9092)]),
        ("kafka", [Endpoint("kafka", 9092)]),
        (
            "PLAINTEXT://b-1.example.com:9094, b-2.example.com:9094",
            [Endpoint("b-1.example.com", 9094), Endpoint("b-2.example.com", 9094)],
        ),
        ("10.0.0.7:19092,10.0.0.7:19092", [Endpoint("10.0.0.7", 19092)]),
        ("[fd00::1]:9093", [Endpoint("fd00::1", 9093)]),
        ("fd00::1", [Endpoint("fd00::1", 9092)]),
    ],
)
def test_bootstrap_servers_in_librdkafkas_forms(bootstrap: str, endpoints: list[Endpoint]) -> None:
    assert kafka_endpoints(bootstrap) == endpoints


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://registry:8081", Endpoint("registry", 8081)),
        ("https://registry.example.com/apis/ccompat/v7", Endpoint("registry.example.com", 443)),
        ("http://10.1.2.3", Endpoint("10.1.2.3", 80)),
    ],
)
def test_registry_endpoint(url: str, endpoint: Endpoint) -> None:
    assert registry_endpoint(url) == endpoint


def test_the_policy_selects_the_query_pods_and_is_owned_by_the_query() -> None:
    ctx = context()
    policy = builders.get_network_policy(ctx)
    assert (policy["apiVersion"], policy["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
    assert policy["metadata"]["name"] == "orders"
    assert policy["metadata"]["namespace"] == "shop"
    assert policy["metadata"]["ownerReferences"] == [builders.owner_reference(ctx)]
    assert policy["spec"]["podSelector"] == {"matchLabels": builders.selector_labels("orders")}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_ingress_is_the_metrics_port_only() -> None:
    spec = builders.get_network_policy(context())["spec"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": builders.METRICS_PORT}]}]


def test_egress_is_dns_kafka_and_the_registry_only() -> None:
    ctx = context(
        kafka={"bootstrapServers": "kafka-0.kafka:9093,kafka-1.kafka:9093,10.0.0.9:9092"},
        schemaRegistry={"url": "https://registry.example.com"},
    )
    egress = builders.get_network_policy(ctx)["spec"]["egress"]
    assert egress == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        # An IP literal: that address, that port.
        {
            "to": [{"ipBlock": {"cidr": "10.0.0.9/32"}}],
            "ports": [{"protocol": "TCP", "port": 9092}],
        },
        # Names: their ports, any address (a NetworkPolicy cannot name hosts).
        {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 9093}]},
    ]


def test_an_ipv6_bootstrap_server_is_a_128_block() -> None:
    egress = builders.get_network_policy(context(kafka={"bootstrapServers": "[fd00::1]:9093"}))
    assert egress["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "fd00::1/128"}}]


@pytest.mark.parametrize(
    ("chart", "spec", "expected"),
    [
        (False, None, False),
        (False, {"enabled": False}, False),
        (False, {"enabled": True}, True),
        (True, None, True),
        (True, {"enabled": False}, True),  # the administrator's flag wins
    ],
)
def test_a_query_gets_a_policy_by_the_chart_or_its_spec(
    chart: bool, spec: dict[str, bool] | None, expected: bool
) -> None:
    fields = {"networkPolicy": spec} if spec is not None else {}
    parsed = model.StreamQuerySpec.model_validate({**BASE_SPEC, **fields})
    assert Policy(("streamhouse",), network_policies=chart).network_policy(parsed) is expected
    env = {"STREAMHOUSE_NETWORK_POLICIES": "true" if chart else ""}
    assert Policy.from_env("streamhouse:0.1.0", env).network_policies is chart
