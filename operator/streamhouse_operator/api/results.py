"""GET .../results: fan out to the query pods' /results endpoints and merge their pages.

Each pod answers for the partitions it owns (see runtime exec/results.py), so the pods' rows
are disjoint and their union is the table. A key lookup asks every pod at once. A scan walks
the pods in ordinal order; the continuation token says which pod and where in it, so a page
never holds more than `limit` rows and the next page starts exactly where this one stopped.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from streamhouse_operator.api import schemas

POD_TIMEOUT_S = 5.0


class PodUnavailable(Exception):
    pass


class NotATable(Exception):
    pass


def _encode_token(pod: int, after: str | None) -> str:
    raw = json.dumps({"pod": pod, "after": after}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str | None]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        pod, after = int(data["pod"]), data.get("after")
    except (ValueError, KeyError, TypeError) as bad:
        raise ValueError("continue: not a token this API handed out") from bad
    if pod < 0 or (after is not None and not isinstance(after, str)):
        raise ValueError("continue: not a token this API handed out")
    return pod, after


async def _ask(
    session: aiohttp.ClientSession, endpoint: str, params: Mapping[str, str]
) -> dict[str, Any]:
    try:
        async with session.get(f"{endpoint}/results", params=dict(params)) as response:
            body = await response.json(content_type=None)
            if response.status == 404:
                raise NotATable(str((body.get("error") or {}).get("message")))
            if response.status == 400:
                raise ValueError(str((body.get("error") or {}).get("message")))
            if response.status != 200:
                raise PodUnavailable(f"{endpoint}: HTTP {response.status}")
            assert isinstance(body, dict)
            return body
    except (aiohttp.ClientError, TimeoutError) as error:
        raise PodUnavailable(f"{endpoint}: {type(error).__name__}") from error


async def read(
    endpoints: list[str],
    *,
    key: str | None,
    window_start_from: int | None,
    window_start_to: int | None,
    limit: int,
    token: str | None,
) -> schemas.ResultPage:
    if not endpoints:
        raise PodUnavailable("the query has no running pods")
    common: dict[str, str] = {}
    if key is not None:
        json.loads(key)  # a bad key is the caller's error (ValueError), not the pods'
        common["key"] = key
    if window_start_from is not None:
        common["window_start_from"] = str(window_start_from)
    if window_start_to is not None:
        common["window_start_to"] = str(window_start_to)
    timeout = aiohttp.ClientTimeout(total=POD_TIMEOUT_S)
    rows: list[schemas.ResultRow] = []
    key_columns: list[str] = []
    windowed = False
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if key is not None:
            answers = await asyncio.gather(
                *(_ask(session, e, {**common, "limit": str(limit)}) for e in endpoints)
            )
            for answer in answers:
                rows.extend(schemas.ResultRow.model_validate(r) for r in answer["rows"])
                key_columns = answer.get("keyColumns") or key_columns
                windowed = bool(answer.get("windowed"))
            return _page(rows[:limit], key_columns, windowed, None, len(endpoints))
        pod, after = _decode_token(token) if token else (0, None)
        next_token: str | None = None
        while pod < len(endpoints) and len(rows) < limit:
            params = {**common, "limit": str(limit - len(rows))}
            if after:
                params["after"] = after
            answer = await _ask(session, endpoints[pod], params)
            rows.extend(schemas.ResultRow.model_validate(r) for r in answer["rows"])
            key_columns = answer.get("keyColumns") or key_columns
            windowed = bool(answer.get("windowed"))
            after = answer.get("next")
            if after is None:
                pod += 1
            if len(rows) >= limit:
                break
        if pod < len(endpoints):
            next_token = _encode_token(pod, after)
    return _page(rows, key_columns, windowed, next_token, len(endpoints))


def _page(
    rows: list[schemas.ResultRow],
    key_columns: list[str],
    windowed: bool,
    token: str | None,
    pods: int,
) -> schemas.ResultPage:
    return schemas.ResultPage.model_validate(
        {
            "rows": rows,
            "keyColumns": key_columns,
            "windowed": windowed,
            "continue": token,
            "pods": pods,
        }
    )
