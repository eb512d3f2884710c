"""The pod's HTTP endpoints: /metrics, /healthz, /readyz (and the results read endpoint).

The kubelet kills a pod whose /healthz does not answer within its probe timeout (1 s by
default), so nothing a client does may keep these answers waiting:

- One asyncio loop in a daemon thread reads every connection. A client that sends half a
  request costs a socket and a coroutine, not a thread, and is dropped when its request head
  has not arrived within `HEAD_TIMEOUT_S` (or exceeds `MAX_HEAD_BYTES`).
- At most `MAX_CONNECTIONS` connections are open; a new one beyond that evicts the oldest
  connection still sending its head (a slow client never locks out the kubelet).
- /healthz and /readyz are answered on the loop itself. Handlers that do real work (/metrics,
  state reads) run on a bounded pool of `WORKERS` threads, each call bounded by
  `HANDLER_TIMEOUT_S`; a saturated pool delays them, never the probes.
- Paths match exactly: `/healthzANYTHING` is 404. Only GET (and HEAD) are served; every
  response closes its connection.

http.server's ThreadingHTTPServer (used before) starts one thread per connection with no read
timeout, so 200 half-sent requests held 200 threads forever. aiohttp (installed with kopf)
has no deadline for a request head either, so the few lines of HTTP/1.1 this needs are here.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streamhouse_runtime.exec.results import DEFAULT_LIMIT, TableReader
from streamhouse_runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
HANDLER_TIMEOUT_S = 10.0
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 512
WORKERS = 4


class HealthState:
    def __init__(self) -> None:
        self.alive = True
        self.ready = False
        self.failure = ""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class _Connection:
    """One open connection; `head_done` turns True once its request head has arrived."""

    def __init__(self, task: asyncio.Task[None], writer: asyncio.StreamWriter) -> None:
        self.task = task
        self.writer = writer
        self.head_done = False


class EndpointServer:
    """The pod's HTTP server. `inline` handlers run on the event loop (they must not block);
    `pooled` handlers on the worker threads."""

    def __init__(
        self,
        address: str,
        port: int,
        inline: Mapping[str, Handler],
        pooled: Mapping[str, Handler],
        *,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        workers: int = WORKERS,
    ) -> None:
        self.inline = dict(inline)
        self.pooled = dict(pooled)
        self.head_timeout_s = head_timeout_s
        self.max_connections = max_connections
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="http-worker")
        self.connections: dict[int, _Connection] = {}  # insertion order = age
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self._server = self.loop.run_until_complete(
                    asyncio.start_server(
                        self._accept, address, port, limit=MAX_HEAD_BYTES, backlog=1024
                    )
                )
            except BaseException as error:
                failure.append(error)
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="http", daemon=True)
        self.thread.start()
        started.wait()
        if failure:
            raise failure[0]
        assert self._server is not None
        self.server_address: tuple[str, int] = self._server.sockets[0].getsockname()[:2]

    # -- connections -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= self.max_connections and not self._evict_one():
            writer.close()
            return
        connection = _Connection(task, writer)
        self.connections[id(task)] = connection
        try:
            await self._serve(reader, writer, connection)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # evicted, or the server is stopping
            pass
        except Exception:
            log.exception("http: request failed")
        finally:
            self.connections.pop(id(task), None)
            writer.close()

    def _evict_one(self) -> bool:
        """Drop the oldest connection that has not finished sending its request head."""
        for connection in self.connections.values():
            if not connection.head_done:
                connection.task.cancel()
                connection.writer.close()
                return True
        return False

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_timeout_s)
        except TimeoutError:
            await self._send(writer, Response(408, b"request head timed out\n"), head_only=False)
            return
        except asyncio.LimitOverrunError:
            await self._send(writer, Response(431, b"request head too large\n"), head_only=False)
            return
        connection.head_done = True
        request = _parse(head)
        if request is None:
            await self._send(writer, Response(400, b"bad request\n"), head_only=False)
            return
        response = await self._dispatch(request)
        await self._send(writer, response, head_only=request.method == "HEAD")

    async def _dispatch(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD"})
        inline = self.inline.get(request.path)
        if inline is not None:
            return inline(request)
        pooled = self.pooled.get(request.path)
        if pooled is None:
            return Response(404, b"not found\n")
        future = self.loop.run_in_executor(self.pool, pooled, request)
        try:
            return await asyncio.wait_for(future, HANDLER_TIMEOUT_S)
        except TimeoutError:
            return Response(503, b"timed out\n")

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, head_only: bool
    ) -> None:
        reason = HTTPStatus(response.status).phrase
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in response.headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(response.body)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)

    # -- life cycle ------------------------------------------------------------------------

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, drop open connections, and wait for running handlers."""

        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for connection in list(self.connections.values()):
                connection.task.cancel()

        if self.loop.is_running():
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout_s)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)
        self.pool.shutdown(wait=True, cancel_futures=True)


def _parse(head: bytes) -> Request | None:
    """The request line of a request head; None when it is not HTTP/1.x."""
    line = head.split(b"\r\n", 1)[0]
    try:
        method, target, version = line.decode("latin-1").split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        return None
    parts = urlsplit(target)
    return Request(method, unquote(parts.path), parse_qs(parts.query))


def serve(
    metrics: RuntimeMetrics,
    health: HealthState,
    address: str,
    port: int,
    extra: Mapping[str, Handler] | None = None,
    *,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> EndpointServer:
    """Start the pod's endpoints (port 0 picks one); `extra` adds pooled routes."""

    def healthz(_: Request) -> Response:
        ok = health.alive
        return Response(200 if ok else 503, b"ok\n" if ok else health.failure.encode())

    def readyz(_: Request) -> Response:
        ok = health.ready and health.alive
        reason = f"not ready: {health.failure}\n" if health.failure else "not ready\n"
        return Response(200 if ok else 503, b"ready\n" if ok else reason.encode())

    def metrics_page(_: Request) -> Response:
        return Response(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

    return EndpointServer(
        address,
        port,
        inline={"/healthz": healthz, "/readyz": readyz},
        pooled={"/metrics": metrics_page, **(extra or {})},
        head_timeout_s=head_timeout_s,
        max_connections=max_connections,
    )


# -- the results read endpoint -------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)  # exact
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def json_response(status: int, body: object) -> Response:
    return Response(
        status, orjson.dumps(body, default=_json_default), "application/json; charset=utf-8"
    )


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


def _int_param(request: Request, name: str) -> int | None:
    value = request.param(name)
    return None if value is None or value == "" else int(value)


def results_route(reader: TableReader | None, ordinal: int) -> Handler:
    """`GET /results?key=JSON&window_start_from=MS&window_start_to=MS&limit=N&after=TOKEN`:
    one page of the rows of the partitions this pod owns (see exec/results.py). One read at
    a time: the others wait (bounded by the handler timeout), so readers never take more than
    one core's share of the GIL from the processing loop."""
    one_at_a_time = threading.Lock()

    def handle(request: Request) -> Response:
        with one_at_a_time:
            return read(request)

    def read(request: Request) -> Response:
        if reader is None:
            return _error(404, "not-a-table", "this query keeps no aggregate state to read")
        try:
            key: tuple[object, ...] | None = None
            raw_key = request.param("key")
            if raw_key is not None:
                value = orjson.loads(raw_key)
                key = tuple(value) if isinstance(value, list) else (value,)
            after = request.param("after") or None
            if after is not None:
                bytes.fromhex(after)
            page = reader.read(
                key,
                _int_param(request, "window_start_from"),
                _int_param(request, "window_start_to"),
                _int_param(request, "limit") or DEFAULT_LIMIT,
                after,
            )
        except (ValueError, orjson.JSONDecodeError) as bad:
            return _error(400, "bad-parameter", str(bad))
        return json_response(
            200,
            {
                "ordinal": ordinal,
                "partitions": page.partitions,
                "windowed": page.windowed,
                "keyColumns": reader.key_names,
                "rows": [
                    {
                        "key": list(row.key),
                        "window": (
                            {"start": row.window[0], "end": row.window[1]} if row.window else None
                        ),
                        "row": row.row,
                    }
                    for row in page.rows
                ],
                "next": page.next_token,
            },
        )

    return handle
