"""Windowed record keys: the key format's bytes followed by the window bounds.

Kafka Streams (and so ksqlDB) writes a time-windowed key as the key bytes then the window
start (8 bytes, big-endian; `TimeWindowedSerializer`), and a session-windowed key as the key
bytes then the session's end then its start (`SessionWindowedSerializer`). StreamHouse's own
layout (the default mode) writes a session's start before its end. A windowed source
(`WITH (window_type = ..., window_size = ...)`) reads those bounds as WINDOWSTART/WINDOWEND.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from streamhouse_runtime.io.serde import KeySerde

WINDOW_START = "WINDOWSTART"
WINDOW_END = "WINDOWEND"
WINDOW_BOUNDS = (WINDOW_START, WINDOW_END)
_BOUND = struct.Struct(">q")
_BOUNDS = struct.Struct(">qq")


def split_windowed_key(
    data: bytes, window_type: str, size_ms: int | None, end_first: bool
) -> tuple[bytes, int, int]:
    """(inner key bytes, window start, window end) of a windowed key; ValueError when the key
    is too short to hold its bounds. `end_first`: sessions in Kafka Streams' layout."""
    if window_type == "SESSION":
        if len(data) < _BOUNDS.size:
            raise ValueError(f"a session-windowed key needs 16 bytes of bounds, got {len(data)}")
        first, second = _BOUNDS.unpack_from(data, len(data) - _BOUNDS.size)
        start, end = (second, first) if end_first else (first, second)
        return data[: -_BOUNDS.size], start, end
    if len(data) < _BOUND.size:
        raise ValueError(f"a time-windowed key needs 8 bytes of window start, got {len(data)}")
    (start,) = _BOUND.unpack_from(data, len(data) - _BOUND.size)
    return data[: -_BOUND.size], start, start + (size_ms or 0)


class WindowedKeyDecoder:
    """Decodes a windowed source's keys: the key columns, plus WINDOWSTART and WINDOWEND."""

    def __init__(
        self, inner: KeySerde, window_type: str, size_ms: int | None, end_first: bool
    ) -> None:
        self.inner = inner
        self.window_type = window_type
        self.size_ms = size_ms
        self.end_first = end_first

    def decode(self, data: bytes | None) -> dict[str, object]:
        if data is None:
            row = self.inner.decode(None)
            row[WINDOW_START] = row[WINDOW_END] = None
            return row
        inner, start, end = split_windowed_key(data, self.window_type, self.size_ms, self.end_first)
        row = self.inner.decode(inner)
        row[WINDOW_START] = start
        row[WINDOW_END] = end
        return row

    def encode(self, values: Sequence[object]) -> bytes | None:
        raise NotImplementedError("windowed keys are written by the window operators")


def windowed_key(
    inner: bytes | None, window_type: str, start: int, end: int, end_first: bool
) -> bytes:
    """The bytes of a windowed key (what `split_windowed_key` reads)."""
    if window_type == "SESSION":
        bounds = _BOUNDS.pack(end, start) if end_first else _BOUNDS.pack(start, end)
    else:
        bounds = _BOUND.pack(start)
    return (inner or b"") + bounds
