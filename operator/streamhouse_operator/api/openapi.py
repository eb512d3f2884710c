"""The OpenAPI 3.1 document of /api/v1, generated from the pydantic models (api/schemas.py and
the StreamQuery spec and status models the CRD comes from)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from streamhouse_operator.api import schemas

REF = "#/components/schemas/{model}"

_MODELS: list[type[BaseModel]] = [
    schemas.CreateQuery,
    schemas.PatchQuery,
    schemas.SqlText,
    schemas.ErrorBody,
    schemas.ValidateResult,
    schemas.ExplainResult,
    schemas.Query,
    schemas.QueryList,
    schemas.ResultPage,
    schemas.TailPage,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad parameters",
        401: "No bearer token, or the API server did not accept it",
        403: "The caller's RBAC does not allow the call (the message names the verb)",
        404: "No such query",
        409: "Conflict: it exists already, or the operator would refuse the SQL change",
        413: "Request body too large",
        422: "The spec or SQL is invalid (the same coded line:column error as kubectl apply)",
        503: "The query's pods cannot be reached",
        504: "The call timed out",
    }
    return {str(s): _json(schemas.ErrorBody, words[s]) for s in statuses}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _param(name: str, where: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": {"type": kind},
    }


def document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template=REF
    )
    path_params = [
        _param("namespace", "path", "Namespace of the query."),
        _param("name", "path", "Name of the query."),
    ]
    page = [
        _param("limit", "query", "Page size (at most 500).", "integer"),
        _param("continue", "query", "Token from the previous page."),
    ]
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "StreamHouse query management API",
            "version": "v1",
            "description": (
                "Backed by StreamQuery objects only. Every call is authorized with a "
                "SubjectAccessReview of the caller for the verb it needs."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Any token the cluster accepts (checked with TokenReview).",
                }
            },
        },
        "security": auth,
        "paths": {
            "/queries": {
                "get": {
                    "summary": "List queries (verb list)",
                    "parameters": [
                        _param("namespace", "query", "Only this namespace (default: all)."),
                        *page,
                    ],
                    "responses": {
                        "200": _json(schemas.QueryList, "One page of queries"),
                        **_errors(401, 403),
                    },
                },
                "post": {
                    "summary": "Create a query (verb create)",
                    "requestBody": _body(schemas.CreateQuery),
                    "responses": {
                        "201": _json(schemas.Query, "Created"),
                        **_errors(401, 403, 409, 413, 422),
                    },
                },
            },
            "/queries/{namespace}/{name}": {
                "parameters": path_params,
                "get": {
                    "summary": "Spec, status, conditions and live figures (verb get)",
                    "responses": {
                        "200": _json(schemas.Query, "The query"),
                        **_errors(401, 403, 404),
                    },
                },
                "patch": {
                    "summary": "Suspend, resume, scale or change the SQL (verb patch)",
                    "requestBody": _body(schemas.PatchQuery),
                    "responses": {
                        "200": _json(schemas.Query, "Patched"),
                        **_errors(401, 403, 404, 409, 422),
                    },
                },
                "delete": {
                    "summary": "Delete the query (verb delete)",
                    "responses": {
                        "200": _json(schemas.Query, "Deleting"),
                        **_errors(401, 403, 404),
                    },
                },
            },
            "/queries/{namespace}/{name}/results": {
                "parameters": path_params,
                "get": {
                    "summary": "Rows of a TABLE query (verb get on streamqueries/results)",
                    "parameters": [
                        _param("key", "query", "The key, as JSON (a list for several columns)."),
                        _param(
                            "windowStartFrom",
                            "query",
                            "Windows starting at or after (ms).",
                            "integer",
                        ),
                        _param(
                            "windowStartTo", "query", "Windows starting before (ms).", "integer"
                        ),
                        *page,
                    ],
                    "responses": {
                        "200": _json(schemas.ResultPage, "One page of rows"),
                        **_errors(400, 401, 403, 404, 503),
                    },
                },
            },
            "/queries/{namespace}/{name}/tail": {
                "parameters": path_params,
                "get": {
                    "summary": "Last records of the output (verb get on streamqueries/results)",
                    "parameters": [_param("n", "query", "How many (at most 200).", "integer")],
                    "responses": {
                        "200": _json(schemas.TailPage, "The records"),
                        **_errors(401, 403, 404, 503),
                    },
                },
            },
            "/queries/{namespace}/{name}/events": {
                "parameters": path_params,
                "get": {
                    "summary": "Server-sent events of the query's changes (verb watch)",
                    "responses": {
                        "200": {
                            "description": "`event: query` with a Query, `event: deleted`",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 403),
                    },
                },
            },
            "/events": {
                "get": {
                    "summary": "Server-sent events of every query in a namespace (verb watch)",
                    "parameters": [_param("namespace", "query", "The namespace.")],
                    "responses": {
                        "200": {
                            "description": "`event: query` with a Query, `event: deleted`",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 403),
                    },
                },
            },
            "/validate": {
                "post": {
                    "summary": "Validate SQL (no side effects; authenticated only)",
                    "requestBody": _body(schemas.SqlText),
                    "responses": {
                        "200": _json(schemas.ValidateResult, "The verdict"),
                        **_errors(401, 413),
                    },
                }
            },
            "/explain": {
                "post": {
                    "summary": "The logical plan of SQL (no side effects; authenticated only)",
                    "requestBody": _body(schemas.SqlText),
                    "responses": {
                        "200": _json(schemas.ExplainResult, "The plan"),
                        **_errors(401, 413, 422),
                    },
                }
            },
        },
    }
