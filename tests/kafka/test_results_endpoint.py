"""The pods' /results endpoint on real runtime processes and the real broker: two pods of one
query (ordinals 0 and 1 of 2) each answer for the partitions they own, disjointly, and the
API's merge of both equals the totals computed from the orders produced, while the pods keep
processing."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from streamhouse_operator.api import results
from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import order, produce, totals_sql

pytestmark = pytest.mark.kafka

CUSTOMERS = 11


def _pod_rows(pod: QueryProcess) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = ""
    while True:
        url = f"http://127.0.0.1:{pod.port}/results?limit=4" + (f"&after={after}" if after else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            page = json.loads(response.read(), parse_float=Decimal)
        rows.extend(page["rows"])
        if not page["next"]:
            return rows
        after = page["next"]


def _merged(pods: list[QueryProcess]) -> dict[str, tuple[int, Decimal]]:
    async def every_page() -> list[Any]:
        rows: list[Any] = []
        token = None
        while True:
            page = await results.read(
                [f"http://127.0.0.1:{p.port}" for p in pods], key=None,
                window_start_from=None, window_start_to=None, limit=3, token=token,
            )  # fmt: skip
            rows.extend(page.rows)
            token = page.continue_
            if token is None:
                return rows

    return {
        r.row["customer_id"]: (r.row["n"], Decimal(str(r.row["total"])))
        for r in asyncio.run(every_page())
    }


def test_each_pod_answers_for_its_partitions_and_the_merge_is_the_table(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    source = make_topic("orders", partitions=4)
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(totals_sql(source, f"totals_{source}"))
    query_id = uuid.uuid4().hex[:10]
    reference: dict[str, tuple[int, Decimal]] = {}

    def send(ids: range) -> None:
        values = []
        for i in ids:
            customer = f"c{i % CUSTOMERS}"
            n, total = reference.get(customer, (0, Decimal(0)))
            reference[customer] = (n + 1, total + Decimal(i % 13))
            values.append(order(i, str(i % 13), customer))
        produce(bootstrap, source, values, [b"%d" % i for i in ids])

    pods = [
        QueryProcess(sql_file, tmp_path, bootstrap, query_id, ordinal=i, replicas=2).start()
        for i in range(2)
    ]
    try:
        send(range(0, 400))
        wait_until(lambda: _merged(pods) == reference, 60, "merged rows = reference")
        send(range(400, 1000))
        wait_until(lambda: _merged(pods) == reference, 60, "after more input")
        first, second = (_pod_rows(p) for p in pods)
        keys = [tuple(r["key"]) for r in first], [tuple(r["key"]) for r in second]
        assert keys[0] and keys[1] and not set(keys[0]) & set(keys[1])
        assert len(keys[0]) + len(keys[1]) == CUSTOMERS
        one = f"http://127.0.0.1:{pods[0].port}/results?key=%22c3%22"
        with urllib.request.urlopen(one, timeout=10) as response:
            found = json.loads(response.read(), parse_float=Decimal)["rows"]
        assert found == [] or found[0]["row"]["n"] == reference["c3"][0]
        assert ("c3",) in keys[0] or found == []
    finally:
        for pod in pods:
            assert pod.stop() == 0
