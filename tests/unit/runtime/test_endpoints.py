"""The pod's HTTP endpoints, on the real server over real sockets: exact paths, and probes that
keep answering within the kubelet's 1 s timeout while hundreds of clients send half a request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from streamhouse_runtime.endpoints import EndpointServer, HealthState, Request, Response, serve
from streamhouse_runtime.metrics import RuntimeMetrics

pytestmark = pytest.mark.unit

KUBELET_TIMEOUT_S = 1.0


def _get(port: int, path: str, timeout_s: float = KUBELET_TIMEOUT_S) -> tuple[int, bytes]:
    """One GET; raises (socket.timeout) when the whole answer takes longer than timeout_s."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: pod\r\n\r\n".encode())
        data = b""
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture
def health() -> HealthState:
    return HealthState()


@pytest.fixture
def server(health: HealthState) -> Iterator[EndpointServer]:
    def slow(_: Request) -> Response:
        time.sleep(3)
        return Response(200, b"slow\n")

    running = serve(
        RuntimeMetrics(), health, "127.0.0.1", 0, {"/slow": slow},
        head_timeout_s=2.0, max_connections=128,
    )  # fmt: skip
    try:
        yield running
    finally:
        running.shutdown()


def test_paths_match_exactly(server: EndpointServer, health: HealthState) -> None:
    port = server.server_address[1]
    assert _get(port, "/healthz") == (200, b"ok\n")
    assert _get(port, "/readyz")[0] == 503
    health.ready = True
    assert _get(port, "/readyz") == (200, b"ready\n")
    assert _get(port, "/readyz?verbose=1") == (200, b"ready\n")
    status, body = _get(port, "/metrics")
    assert status == 200 and b"streamhouse_records_in" in body
    for path in ("/healthzANYTHING", "/healthz/", "/readyzz", "/metricsfoo", "/", "/x/healthz"):
        assert _get(port, path)[0] == 404, path


def test_other_methods_and_garbage_are_refused(server: EndpointServer) -> None:
    port = server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 405")
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"\x16\x03\x01 hello\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_probes_answer_within_a_second_under_200_half_sent_requests(
    server: EndpointServer, health: HealthState
) -> None:
    health.ready = True
    port = server.server_address[1]
    threads_before = threading.active_count()
    slow_clients: list[socket.socket] = []
    try:
        # 200 clients, more than the server's connection limit (128): half send part of a
        # request head and stall, half connect and send nothing. Plus four slow handler calls
        # that occupy every worker thread.
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2 == 0:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: po")
            slow_clients.append(sock)
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
            slow_clients.append(sock)
        time.sleep(0.2)
        for _ in range(20):
            started = time.monotonic()
            assert _get(port, "/healthz") == (200, b"ok\n")
            assert _get(port, "/readyz") == (200, b"ready\n")
            assert time.monotonic() - started < 2 * KUBELET_TIMEOUT_S
        # A connection costs no thread: only the bounded worker pool may have started.
        assert threading.active_count() - threads_before <= 4
        # The server gives up on half-sent requests after its head timeout (2 s here).
        time.sleep(2.5)
        closed = 0
        for sock in slow_clients[:200]:
            sock.settimeout(0.5)
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            except TimeoutError:
                continue
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                closed += 1
        assert closed == 200
    finally:
        for sock in slow_clients:
            sock.close()


def test_results_route_answers_json_pages_and_refuses_bad_parameters(health: HealthState) -> None:
    import json

    from streamhouse_runtime.endpoints import results_route
    from streamhouse_runtime.exec.results import TableReader
    from streamhouse_runtime.state.backend import MemoryStateBackend
    from tests.unit.exec.test_results_reader import RUNNING, _executor, _feed

    backend = MemoryStateBackend()
    executor = _executor(RUNNING, backend)
    _feed(executor, backend, [("a", 1, 0), ("a", 2, 1), ("b", 5, 2), ("b", 1, 3)])
    reader = TableReader(executor, backend, lambda: range(4))
    routes = {"/results": results_route(reader, 0), "/none": results_route(None, 0)}
    running = serve(RuntimeMetrics(), health, "127.0.0.1", 0, routes)
    try:
        port = running.server_address[1]
        status, body = _get(port, "/results?limit=1")
        page = json.loads(body)
        assert status == 200 and len(page["rows"]) == 1 and page["next"]
        status, body = _get(port, f"/results?limit=5&after={page['next']}")
        second = json.loads(body)
        assert [r["key"] for r in page["rows"] + second["rows"]] == [["a"], ["b"]]
        assert second["next"] is None
        status, body = _get(port, "/results?key=%22b%22")
        assert json.loads(body)["rows"] == [
            {"key": ["b"], "window": None, "row": {"k": "b", "n": 2, "total": 6}}
        ]
        assert _get(port, "/results?limit=x")[0] == 400
        assert _get(port, "/results?after=zz")[0] == 400
        assert _get(port, "/results?key=%7B")[0] == 400
        assert _get(port, "/none")[0] == 404
    finally:
        running.shutdown()
