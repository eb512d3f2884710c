"""Runs an Argo CD Lua health check the way Argo CD does: the object as the global `obj`, the
script's returned table read as {status, message}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import LuaRuntime

GITOPS = Path(__file__).resolve().parents[2] / "examples" / "gitops"
QUERY_HEALTH = GITOPS / "argocd" / "streamquery-health.lua"
SOURCE_HEALTH = GITOPS / "argocd" / "streamsource-health.lua"


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    """JSON-like Python values as Lua tables (lists 1-based, as Argo CD's conversion does)."""
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(script: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of `obj` by the health check in `script`."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(script.read_text())
    return str(result["status"]), str(result["message"] or "")
