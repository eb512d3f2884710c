"""The API's results fan-out against real pod endpoint servers (two in-process runtime HTTP
servers, each owning half the partitions of one state): merged pages equal the whole table,
with continuation tokens across pods; key lookups ask every pod; the OpenAPI document's
references all resolve."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from streamhouse_operator.api import openapi, results
from streamhouse_runtime.endpoints import EndpointServer, HealthState, results_route, serve
from streamhouse_runtime.exec.results import TableReader
from streamhouse_runtime.metrics import RuntimeMetrics
from streamhouse_runtime.state.backend import MemoryStateBackend
from tests.unit.exec.test_results_reader import PARTITIONS, RUNNING, _executor, _feed

pytestmark = pytest.mark.unit

ROWS = [(f"user-{i % 37}", i, i) for i in range(400)]


@pytest.fixture
def pods() -> Iterator[list[str]]:
    backend = MemoryStateBackend()
    executor = _executor(RUNNING, backend)
    _feed(executor, backend, ROWS)
    servers: list[EndpointServer] = []
    for ordinal in range(2):
        owned = [p for p in range(PARTITIONS) if p % 2 == ordinal]
        reader = TableReader(executor, backend, lambda owned=owned: owned)  # type: ignore[misc]
        servers.append(
            serve(
                RuntimeMetrics(), HealthState(), "127.0.0.1", 0,
                {"/results": results_route(reader, ordinal)},
            )
        )  # fmt: skip
    try:
        yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    finally:
        for server in servers:
            server.shutdown()


def _reference() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for k, v, _ in ROWS:
        row = table.setdefault(k, {"k": k, "n": 0, "total": 0})
        row["n"] += 1
        row["total"] += v
    return table


def test_pages_across_pods_equal_the_table(pods: list[str]) -> None:
    async def every_page(limit: int) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        token: str | None = None
        pages = 0
        while True:
            page = await results.read(
                pods, key=None, window_start_from=None, window_start_to=None,
                limit=limit, token=token,
            )  # fmt: skip
            assert len(page.rows) <= limit and page.pods == 2
            rows.extend(r.row for r in page.rows)
            pages += 1
            token = page.continue_
            if token is None:
                return rows, pages

    for limit in (1, 7, 500):
        rows, pages = asyncio.run(every_page(limit))
        assert {r["k"]: r for r in rows} == _reference()
        assert len(rows) == len(_reference())
        assert pages >= len(rows) // limit


def test_key_lookup_asks_every_pod(pods: list[str]) -> None:
    for name in ("user-4", "user-5"):
        page = asyncio.run(
            results.read(
                pods, key=json.dumps(name), window_start_from=None, window_start_to=None,
                limit=10, token=None,
            )
        )  # fmt: skip
        assert [r.row for r in page.rows] == [_reference()[name]]
        assert page.key_columns == ["k"]


def test_bad_tokens_and_dead_pods_are_reported(pods: list[str]) -> None:
    with pytest.raises(ValueError):
        asyncio.run(
            results.read(pods, key=None, window_start_from=None, window_start_to=None,
                         limit=5, token="not-a-token")
        )  # fmt: skip
    with pytest.raises(results.PodUnavailable):
        asyncio.run(
            results.read(["http://127.0.0.1:9"], key=None, window_start_from=None,
                         window_start_to=None, limit=5, token=None)
        )  # fmt: skip


def test_openapi_references_resolve() -> None:
    document = openapi.document()
    text = json.dumps(document)
    names = set(document["components"]["schemas"])
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= names
    assert {"CreateQuery", "StreamQuerySpec", "StreamQueryStatus", "ResultPage"} <= names
    create = document["components"]["schemas"]["CreateQuery"]
    assert {"sql", "name", "namespace"} <= set(create["required"])
    assert set(document["paths"]) >= {
        "/queries", "/queries/{namespace}/{name}", "/queries/{namespace}/{name}/results",
        "/queries/{namespace}/{name}/events", "/validate", "/explain",
    }  # fmt: skip
