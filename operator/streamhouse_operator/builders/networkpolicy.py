"""The NetworkPolicy `<name>`: the query's pods talk to Kafka, the schema registry and DNS only,
and accept connections on the metrics port only.

A NetworkPolicy names destinations by IP block, never by host name. A bootstrap server or
registry given as an IP literal becomes a /32 (/128) block on its port; one given by name
allows its port towards any address (the name resolves to whatever DNS says, and the brokers
the bootstrap list leads to are advertised by the cluster itself). So the policy pins ports
everywhere and addresses where it can. Only a CNI plugin that enforces NetworkPolicy (Calico,
Cilium, ...) makes it take effect; without one the API server stores it and nothing changes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamhouse_operator.builders.common import (
    METRICS_PORT,
    Manifest,
    QueryContext,
    metadata,
    selector_labels,
)

DEFAULT_KAFKA_PORT = 9092
DNS_PORT = 53


@dataclass(frozen=True, order=True)
class Endpoint:
    """A TCP destination: a host (name or IP literal) and a port."""

    host: str
    port: int


def _host_port(text: str, default_port: int) -> Endpoint:
    """`host:port`, `[v6]:port`, `host`, or `PLAINTEXT://host:port` (librdkafka's forms)."""
    text = text.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""  # a bare name, or a bare IPv6 address
    return Endpoint(host, int(port) if port.isdigit() else default_port)


def kafka_endpoints(bootstrap_servers: str) -> list[Endpoint]:
    """The bootstrap list as endpoints, in order, without duplicates."""
    found = [_host_port(part, DEFAULT_KAFKA_PORT) for part in bootstrap_servers.split(",")]
    return sorted({endpoint for endpoint in found if endpoint.host})


def registry_endpoint(url: str) -> Endpoint:
    """The schema registry's host and port (80 or 443 by scheme when the URL names none)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.hostname or "", parts.port or default)


def _ip_block(host: str) -> Manifest | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return {"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}


def _egress_rules(endpoints: list[Endpoint]) -> list[Manifest]:
    """One rule per IP-literal endpoint (address and port); one rule for the ports of every
    named endpoint (any address)."""
    rules: list[Manifest] = []
    named_ports: set[int] = set()
    for endpoint in endpoints:
        block = _ip_block(endpoint.host)
        if block is None:
            named_ports.add(endpoint.port)
        else:
            rules.append({"to": [block], "ports": [{"protocol": "TCP", "port": endpoint.port}]})
    if named_ports:
        rules.append({"ports": [{"protocol": "TCP", "port": port} for port in sorted(named_ports)]})
    return rules


def get_network_policy(ctx: QueryContext) -> Manifest:
    """Ingress: the metrics port only (probes and Prometheus). Egress: DNS (53 UDP and TCP),
    the Kafka bootstrap servers' ports and the schema registry's, nothing else."""
    spec = ctx.spec
    endpoints = kafka_endpoints(spec.kafka.bootstrap_servers)
    if spec.schema_registry is not None:
        endpoints.append(registry_endpoint(spec.schema_registry.url))
    dns: Manifest = {
        "ports": [
            {"protocol": "UDP", "port": DNS_PORT},
            {"protocol": "TCP", "port": DNS_PORT},
        ]
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(ctx, ctx.name),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ctx.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}],
            "egress": [dns, *_egress_rules(sorted(set(endpoints)))],
        },
    }
