"""The REST API end to end: a TABLE query POSTed to `streamhouse api` becomes a StreamQuery that
the operator deploys as two pods; GET .../results (fanned out to both pods' state, merged,
paged) equals totals computed here from the orders produced; then DELETE removes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.e2e.conftest import Queries, editor_token
from tests.harness.api import ApiServer
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane
from tests.harness.processes import wait_until

pytestmark = pytest.mark.e2e

CUSTOMERS = 7
SQL = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2))
  WITH (kafka_topic = '{source}', value_format = 'JSON');
CREATE TABLE totals WITH (kafka_topic = '{output}') AS
  SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total
  FROM orders GROUP BY customer_id;
"""


def amount(order_id: int) -> Decimal:
    return Decimal(order_id % 89) + Decimal("0.35")


def produce(bootstrap: str, topic: str, ids: range) -> dict[str, dict[str, Any]]:
    """Orders keyed by order id (so GROUP BY customer_id repartitions); the reference table."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for order_id in ids:
        value = {"order_id": order_id, "customer_id": f"c{order_id % CUSTOMERS}"}
        text = json.dumps(value)[:-1] + f', "amount": {amount(order_id)}}}'
        producer.produce(topic, text.encode(), str(order_id).encode())
    assert producer.flush(30) == 0
    table: dict[str, dict[str, Any]] = {}
    for order_id in ids:
        row = table.setdefault(
            f"c{order_id % CUSTOMERS}",
            {"customer_id": f"c{order_id % CUSTOMERS}", "n": 0, "total": Decimal(0)},
        )
        row["n"] += 1
        row["total"] += amount(order_id)
    return table


def read_all(api: ApiServer, path: str, token: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(100):
        reply = api.call("GET", f"{path}?limit={limit}{cursor}", token=token)
        assert reply.status == 200, reply.body
        page = json.loads(reply.text, parse_float=Decimal)
        assert len(page["rows"]) <= limit and page["pods"] == 2
        rows.extend(r["row"] for r in page["rows"])
        if not page.get("continue"):
            return rows
        cursor = f"&continue={page['continue']}"
    raise AssertionError("paging did not end")


def test_rest_created_table_query_is_deployed_and_its_results_equal_a_reference(
    api_server: ApiServer,
    queries: Queries,
    control_plane: ControlPlane,
    kafka_broker: KafkaBroker,
    make_topic: Callable[..., str],
    namespace: str,
) -> None:
    source = make_topic("orders", partitions=4)
    output = f"{source}-totals"
    token = editor_token(control_plane, namespace)
    wait_until(
        lambda: api_server.call("GET", f"/api/v1/queries?namespace={namespace}", token=token)
        .status == 200,
        15,
        "the editor role",
    )  # fmt: skip
    body = {
        "namespace": namespace, "name": "totals", "parallelism": 2,
        "sql": SQL.format(source=source, output=output),
    }  # fmt: skip
    reply = api_server.call("POST", "/api/v1/queries", body, token=token)
    assert reply.status == 201, reply.body
    queries.wait_running("totals", replicas=2)
    path = f"/api/v1/queries/{namespace}/totals/results"

    reference = produce(kafka_broker.bootstrap, source, range(0, 300))

    wait_until(results_match_of(api_server, path, token, reference), 90, "results = reference")
    more = produce(kafka_broker.bootstrap, source, range(0, 600))  # 0..299 again + 300 new
    for customer, row in reference.items():
        more[customer]["n"] += row["n"]
        more[customer]["total"] += row["total"]
    wait_until(results_match_of(api_server, path, token, more), 90, "results after more input")
    paged = read_all(api_server, path, token, 2)
    assert sorted(r["customer_id"] for r in paged) == sorted(more)
    one = api_server.call("GET", f"{path}?key=%22c3%22", token=token)
    assert json.loads(one.text, parse_float=Decimal)["rows"][0]["row"] == more["c3"]
    status = api_server.call("GET", f"/api/v1/queries/{namespace}/totals", token=token).body
    assert status["lifecycleState"] == "RUNNING" and status["ready"] is True
    assert status["kind"] == "TABLE"

    reply = api_server.call("DELETE", f"/api/v1/queries/{namespace}/totals", token=token)
    assert reply.status == 200
    wait_until(lambda: queries.get("totals") is None, 60, "deleted")


def results_match_of(
    api: ApiServer, path: str, token: str, table: dict[str, dict[str, Any]]
) -> Callable[[], bool]:
    return lambda: {r["customer_id"]: r for r in read_all(api, path, token, 500)} == table
