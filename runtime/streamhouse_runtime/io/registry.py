"""A small client for the Confluent Schema Registry REST API (and compatible registries).

Only what the serdes need: register a schema under a subject, and fetch a schema by id, both
cached for the life of the client (ids are immutable in the Confluent model, so the cache never
goes stale). It uses the standard library's HTTP client on purpose: confluent-kafka's own
`SchemaRegistryClient` pulls in httpx2, authlib, attrs, cachetools and certifi for two GET/POST
calls that happen once per schema.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import TypeVar

T = TypeVar("T")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryError(Exception):
    """The registry refused a request or could not be reached; `status` is the HTTP status or
    None when no answer came back."""

    def __init__(self, message: str, status: int | None = None, error_code: int | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class SchemaRegistry:
    """Client for one registry, e.g. `SchemaRegistry("http://127.0.0.1:8081")`.

    Credentials in the URL (`http://user:secret@host:8081`) are sent as HTTP basic auth.
    Thread-safe: the caches are filled under a lock and read without one.
    """

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        self._headers = {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            secret = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{secret}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
            netloc = parts.hostname or ""
            if parts.port is not None:
                netloc = f"{netloc}:{parts.port}"
            parts = parts._replace(netloc=netloc)
        self.url = urllib.parse.urlunsplit(parts)
        self.timeout_s = timeout_s
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema: str, schema_type: str = "AVRO") -> int:
        """Register `schema` (its JSON text) under `subject` and return its id.

        Registering a schema the subject already has is a no-op that returns the existing id,
        so callers may call this once per process without checking first.
        """
        cached = self._ids.get((subject, schema))
        if cached is not None:
            return cached
        body: dict[str, object] = {"schema": schema}
        if schema_type != "AVRO":  # AVRO is the default; older registries reject the field
            body["schemaType"] = schema_type
        answer = self._request("POST", f"/subjects/{_quote(subject)}/versions", body)
        schema_id = _field(answer, "id", int)
        with self._lock:
            self._ids[(subject, schema)] = schema_id
            self._schemas.setdefault(schema_id, schema)
        return schema_id

    def get_schema(self, schema_id: int) -> str:
        """The schema (its JSON text) with this id; raises SchemaRegistryError (status 404)
        when the registry has no such id."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        answer = self._request("GET", f"/schemas/ids/{int(schema_id)}")
        schema = _field(answer, "schema", str)
        with self._lock:
            self._schemas[schema_id] = schema
        return schema

    def latest(self, subject: str) -> str:
        """The latest schema (its JSON text) of `subject` (uncached: for imports)."""
        answer = self._request("GET", f"/subjects/{_quote(subject)}/versions/latest")
        return _field(answer, "schema", str)

    def subjects(self) -> list[str]:
        """Every subject the registry knows (uncached: for tools and tests)."""
        answer = self._request("GET", "/subjects")
        if not isinstance(answer, list) or not all(isinstance(s, str) for s in answer):
            raise SchemaRegistryError(f"unexpected answer to GET /subjects: {answer!r}")
        return list(answer)

    def _request(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self._headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            # Confluent errors are {"error_code": 40401, "message": "..."}.
            detail = e.read().decode(errors="replace")
            code: int | None = None
            try:
                parsed = json.loads(detail)
                if isinstance(parsed, dict):
                    detail = str(parsed.get("message", detail))
                    raw_code = parsed.get("error_code")
                    code = raw_code if isinstance(raw_code, int) else None
            except ValueError:
                pass
            raise SchemaRegistryError(
                f"{method} {path}: HTTP {e.code}: {detail}", e.code, code
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise SchemaRegistryError(f"{method} {self.url}{path}: {e}") from e


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _field(answer: object, name: str, kind: type[T]) -> T:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, kind):
        raise SchemaRegistryError(f"registry answer has no {name!r}: {answer!r}")
    return value
