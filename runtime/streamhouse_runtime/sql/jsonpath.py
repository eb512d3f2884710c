"""Literal arguments the analyzer checks before any record: JSONPath texts
(EXTRACTJSONFIELD) and the encodings ENCODE knows. The runtime uses the same definitions."""

from __future__ import annotations

import re
from functools import lru_cache

ENCODINGS = ("hex", "utf8", "ascii", "base64")

_PATH_STEP = re.compile(
    r"""\.([^.\[\]]+)|\[\s*(\d+)\s*\]|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]"""
)


@lru_cache(maxsize=256)
def json_path(path: str) -> tuple[str | int, ...]:
    """The steps of a JSONPath such as `$.log.cloud`, `$.items[0]` or `$['a b']`."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"invalid JSON path '{path[:60]}': it must start with $")
    steps: list[str | int] = []
    index = 1
    while index < len(text):
        match = _PATH_STEP.match(text, index)
        if match is None:
            raise ValueError(f"invalid JSON path '{path[:60]}' at position {index + 1}")
        name, number, single, double = match.groups()
        steps.append(int(number) if number is not None else (name or single or double or ""))
        index = match.end()
    return tuple(steps)
