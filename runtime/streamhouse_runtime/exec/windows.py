"""Window assignment as pure functions of event time (milliseconds).

Windows are aligned to the epoch, like Kafka Streams and Flink: a tumbling window of size S
covers [k*S, (k+1)*S). Session windows are merged by the aggregate operator, not here.
"""

from __future__ import annotations


def tumbling(timestamp_ms: int, size_ms: int) -> tuple[int, int]:
    """The one window [start, end) holding the time."""
    start = timestamp_ms - timestamp_ms % size_ms
    return start, start + size_ms


def hopping(timestamp_ms: int, size_ms: int, slide_ms: int) -> list[tuple[int, int]]:
    """Every window [start, start+size) with start a multiple of slide containing the time."""
    last_start = timestamp_ms - timestamp_ms % slide_ms
    windows = []
    start = last_start
    while start > timestamp_ms - size_ms:
        windows.append((start, start + size_ms))
        start -= slide_ms
    windows.reverse()
    return windows
