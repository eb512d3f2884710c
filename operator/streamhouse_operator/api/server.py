"""The REST API and the web console: one aiohttp application, `streamhouse api`.

Its own Deployment in the chart (not the operator's process): it faces users, so it runs with a
service account that may only touch StreamQuery objects, ask TokenReview/SubjectAccessReview
and list the query pods, never the Secrets, StatefulSets and webhook configuration the
operator's account holds; and it scales and restarts on its own, without a leader election.
aiohttp is kopf's own HTTP stack (already in the image), asyncio-native, and serves the SSE
streams and the console's static files without another dependency.

Every call: bearer token -> TokenReview -> SubjectAccessReview for the call's verb and
namespace (401 / 403 naming the verb), a body of at most `MAX_BODY_BYTES`, `CALL_TIMEOUT_S`
per call (event streams excepted), pages of at most `schemas.MAX_PAGE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from streamhouse_operator.api import openapi, queries, results, schemas, tail
from streamhouse_operator.api.auth import (
    RESULTS_SUBRESOURCE,
    Access,
    Authorizer,
    Caller,
    Forbidden,
    Unauthenticated,
)
from streamhouse_operator.models import streamquery as model

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a query's SQL is at most 256 KiB
CALL_TIMEOUT_S = 15.0
MAX_EVENT_STREAMS = 64
HEARTBEAT_S = 15.0
STATIC = Path(__file__).parent / "static"

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, problem: schemas.Problem, more: list[schemas.Problem]):
        super().__init__(problem.message)
        self.status = status
        self.problem = problem
        self.more = more


def _fail(status: int, code: str, message: str, **extra: Any) -> ApiError:
    problem = schemas.Problem(code=code, message=message, **extra)
    return ApiError(status, problem, [])


def _json(body: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    text = (
        body.model_dump_json(by_alias=True, exclude_none=True)
        if isinstance(body, BaseModel)
        else json.dumps(body)
    )
    return web.Response(text=text, status=status, content_type="application/json")


def _error_response(error: ApiError) -> web.Response:
    body = schemas.ErrorBody(error=error.problem, errors=[error.problem, *error.more])
    response = _json(body, error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="streamhouse"'
    return response


class Api:
    def __init__(self, store: queries.QueryStore, authorizer: Authorizer) -> None:
        self.store = store
        self.authorizer = authorizer
        self.streams = asyncio.Semaphore(MAX_EVENT_STREAMS)

    # -- plumbing --------------------------------------------------------------------------

    async def _blocking(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(call), CALL_TIMEOUT_S)
        except TimeoutError:
            raise _fail(504, "TIMEOUT", f"the call took longer than {CALL_TIMEOUT_S:g} s") from None

    async def _caller(self, request: web.Request) -> Caller:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _fail(401, "UNAUTHENTICATED", "send a bearer token (Authorization: Bearer ...)")
        try:
            return await self._blocking(lambda: self.authorizer.authenticate(token.strip()))
        except Unauthenticated as refused:
            raise _fail(401, "UNAUTHENTICATED", str(refused)) from None

    async def _allow(self, request: web.Request, access: Access) -> Caller:
        caller = await self._caller(request)
        try:
            await self._blocking(lambda: self.authorizer.require(caller, access))
        except Forbidden as refused:
            raise _fail(
                403,
                "FORBIDDEN",
                f"{caller.username} may not {access.describe()}: RBAC verb "
                f"{access.verb!r} on {model.PLURAL}"
                + (f"/{access.subresource}" if access.subresource else "")
                + " is missing",
                missing_verb=refused.access.verb,
            ) from None
        return caller

    @staticmethod
    async def _body(request: web.Request, kind: type[BaseModel] | None) -> Any:
        try:
            data = await request.json()
        except web.HTTPRequestEntityTooLarge:
            raise
        except ValueError:
            raise _fail(400, "BAD_REQUEST", "the body must be JSON") from None
        if kind is None:
            return data
        try:
            return kind.model_validate(data)
        except ValidationError as invalid:
            first = invalid.errors()[0]
            path = ".".join(str(p) for p in first["loc"]) or "body"
            raise _fail(422, "INVALID_REQUEST", f"{path}: {first['msg']}", field=path) from None

    @staticmethod
    def _limit(request: web.Request) -> int:
        try:
            limit = int(request.query.get("limit") or schemas.DEFAULT_PAGE)
        except ValueError:
            raise _fail(400, "BAD_REQUEST", "limit must be an integer") from None
        return max(1, min(limit, schemas.MAX_PAGE))

    @staticmethod
    def _target(request: web.Request) -> tuple[str, str]:
        return request.match_info["namespace"], request.match_info["name"]

    async def _query_view(self, namespace: str, name: str) -> schemas.Query:
        obj = await self._blocking(lambda: self.store.get(namespace, name))
        return queries.view(obj)

    # -- queries ---------------------------------------------------------------------------

    async def list_queries(self, request: web.Request) -> web.StreamResponse:
        namespace = request.query.get("namespace", "")
        await self._allow(request, Access("list", namespace))
        limit = self._limit(request)
        token = request.query.get("continue")
        page = await self._blocking(lambda: self.store.list_queries(namespace, limit, token))
        return _json(page)

    async def create_query(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, None)
        if not isinstance(body, dict):
            raise _fail(422, "INVALID_REQUEST", "the body must be a JSON object")
        namespace = body.get("namespace")
        if not isinstance(namespace, str) or not namespace:
            raise _fail(422, "INVALID_REQUEST", "namespace: required", field="namespace")
        await self._allow(request, Access("create", namespace))
        created = await self._blocking(lambda: self.store.create(body))
        return _json(queries.view(created), 201)

    async def get_query(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        await self._allow(request, Access("get", namespace, name))
        return _json(await self._query_view(namespace, name))

    async def patch_query(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        changes: schemas.PatchQuery = await self._body(request, schemas.PatchQuery)
        await self._allow(request, Access("patch", namespace, name))
        patched = await self._blocking(lambda: self.store.patch(namespace, name, changes))
        return _json(queries.view(patched))

    async def delete_query(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        await self._allow(request, Access("delete", namespace, name))
        current = await self._blocking(lambda: self.store.get(namespace, name))
        await self._blocking(lambda: self.store.delete(namespace, name))
        return _json(queries.view(current))

    async def query_results(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        await self._allow(request, Access("get", namespace, name, RESULTS_SUBRESOURCE))
        view = await self._query_view(namespace, name)
        if view.kind != "TABLE":
            raise _fail(404, "NOT_A_TABLE", f"{name} is not a TABLE query: use /tail")
        endpoints = await self._blocking(lambda: self.store.pod_endpoints(namespace, name))
        try:
            window_from = _int_or_none(request.query.get("windowStartFrom"))
            window_to = _int_or_none(request.query.get("windowStartTo"))
            page = await asyncio.wait_for(
                results.read(
                    endpoints,
                    key=request.query.get("key"),
                    window_start_from=window_from,
                    window_start_to=window_to,
                    limit=self._limit(request),
                    token=request.query.get("continue"),
                ),
                CALL_TIMEOUT_S,
            )
        except ValueError as bad:
            raise _fail(400, "BAD_REQUEST", str(bad)) from None
        except results.NotATable as missing:
            raise _fail(404, "NOT_A_TABLE", str(missing)) from None
        except (results.PodUnavailable, TimeoutError) as down:
            raise _fail(503, "PODS_UNAVAILABLE", str(down) or "the pods did not answer") from None
        return _json(page)

    async def query_tail(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        await self._allow(request, Access("get", namespace, name, RESULTS_SUBRESOURCE))
        view = await self._query_view(namespace, name)
        spec = view.spec
        if not isinstance(spec, model.StreamQuerySpec):
            raise _fail(409, "INVALID_SPEC", "the stored spec does not validate")
        if spec.kafka.secret_ref is not None:
            raise _fail(
                409, "CREDENTIALS_REQUIRED", "the query's Kafka needs credentials the API lacks"
            )
        status = view.status
        topic = status.output_topic if not isinstance(status, dict) else None
        if not topic:
            raise _fail(503, "NOT_DEPLOYED", "the query has no output topic yet")
        try:
            count = int(request.query.get("n") or 20)
        except ValueError:
            raise _fail(400, "BAD_REQUEST", "n must be an integer") from None
        try:
            page = await self._blocking(
                lambda: tail.tail(spec.kafka.bootstrap_servers, topic, count)
            )
        except tail.TailUnavailable as down:
            raise _fail(503, "TOPIC_UNAVAILABLE", str(down)) from None
        return _json(page)

    # -- events ----------------------------------------------------------------------------

    async def query_events(self, request: web.Request) -> web.StreamResponse:
        namespace, name = self._target(request)
        await self._allow(request, Access("watch", namespace, name))
        return await self._stream(request, namespace, name)

    async def namespace_events(self, request: web.Request) -> web.StreamResponse:
        namespace = request.query.get("namespace", "")
        if not namespace:
            raise _fail(400, "BAD_REQUEST", "namespace is required")
        await self._allow(request, Access("watch", namespace))
        return await self._stream(request, namespace, None)

    async def _stream(
        self, request: web.Request, namespace: str, name: str | None
    ) -> web.StreamResponse:
        if self.streams.locked():
            raise _fail(503, "TOO_MANY_STREAMS", "too many open event streams; retry later")
        async with self.streams:
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue(1000)
            stop = threading.Event()

            def pump() -> None:
                try:
                    for kind, obj in self.store.watch(namespace, name, stop):
                        loop.call_soon_threadsafe(events.put_nowait, (kind, obj))
                except Exception:
                    log.exception("event stream of %s/%s failed", namespace, name or "*")
                finally:
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(events.put_nowait, None)

            threading.Thread(target=pump, name="sse-watch", daemon=True).start()
            try:
                while True:
                    try:
                        item = await asyncio.wait_for(events.get(), HEARTBEAT_S)
                    except TimeoutError:
                        await response.write(b": heartbeat\n\n")
                        continue
                    if item is None:
                        break
                    kind, obj = item
                    metadata = obj.get("metadata") or {}
                    if kind == "DELETED":
                        data = json.dumps(
                            {"namespace": metadata.get("namespace"), "name": metadata.get("name")}
                        )
                        await response.write(f"event: deleted\ndata: {data}\n\n".encode())
                    else:
                        view = queries.view(obj).model_dump_json(by_alias=True, exclude_none=True)
                        await response.write(f"event: query\ndata: {view}\n\n".encode())
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            finally:
                stop.set()
            return response

    # -- SQL -------------------------------------------------------------------------------

    async def validate(self, request: web.Request) -> web.StreamResponse:
        await self._caller(request)
        body: schemas.SqlText = await self._body(request, schemas.SqlText)
        return _json(await self._blocking(lambda: queries.validate_sql(body.sql)))

    async def explain(self, request: web.Request) -> web.StreamResponse:
        await self._caller(request)
        body: schemas.SqlText = await self._body(request, schemas.SqlText)
        return _json(await self._blocking(lambda: queries.explain_sql(body.sql)))

    @staticmethod
    async def openapi_document(_: web.Request) -> web.StreamResponse:
        return _json(openapi.document())


def _int_or_none(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error)
    except queries.Invalid as invalid:
        first, *more = invalid.problems
        return _error_response(ApiError(422, first, more))
    except queries.Conflict as conflict:
        return _error_response(ApiError(409, conflict.problem, []))
    except queries.NotFound:
        return _error_response(_fail(404, "NOT_FOUND", "no such query"))
    except web.HTTPRequestEntityTooLarge:
        return _error_response(
            _fail(413, "BODY_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes")
        )


async def _healthz(_: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


async def _console(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


def application(store: queries.QueryStore, authorizer: Authorizer) -> web.Application:
    api = Api(store, authorizer)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors])
    base = "/api/v1"
    app.router.add_get(f"{base}/openapi.json", api.openapi_document)
    app.router.add_get(f"{base}/queries", api.list_queries)
    app.router.add_post(f"{base}/queries", api.create_query)
    one = f"{base}/queries/{{namespace}}/{{name}}"
    app.router.add_get(one, api.get_query)
    app.router.add_patch(one, api.patch_query)
    app.router.add_delete(one, api.delete_query)
    app.router.add_get(f"{one}/results", api.query_results)
    app.router.add_get(f"{one}/tail", api.query_tail)
    app.router.add_get(f"{one}/events", api.query_events)
    app.router.add_get(f"{base}/events", api.namespace_events)
    app.router.add_post(f"{base}/validate", api.validate)
    app.router.add_post(f"{base}/explain", api.explain)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/", _console)
    if STATIC.is_dir():
        app.router.add_static("/static/", STATIC)
    return app


def run(address: str, port: int, default_bootstrap: str | None) -> None:
    """`streamhouse api`: serve until interrupted."""
    from streamhouse_operator.kube import default_client

    api_client = default_client()
    store = queries.QueryStore(api_client, default_bootstrap)
    app = application(store, Authorizer(api_client))
    web.run_app(app, host=address, port=port, access_log=None, print=None)
