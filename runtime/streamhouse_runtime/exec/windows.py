"""Window assignment as pure functions of event time (milliseconds).

Windows are aligned to the epoch, like Kafka Streams and Flink: a tumbling window of size S
covers [k*S, (k+1)*S); hopping windows never start before 0. Session windows are merged by
the aggregate operator, not here.
"""

from __future__ import annotations


def tumbling(timestamp_ms: int, size_ms: int) -> tuple[int, int]:
    """The one window [start, end) holding the time."""
    start = timestamp_ms - timestamp_ms % size_ms
    return start, start + size_ms


def hopping(timestamp_ms: int, size_ms: int, slide_ms: int) -> list[tuple[int, int]]:
    """Every window [start, start+size) with start a multiple of slide containing the time.

    Kafka Streams' rule (``TimeWindows.windowsFor``): no window starts before 0, so a record
    early in the epoch lands only in the windows that start at 0 or later. A time before the
    epoch has no hopping window and is refused (the caller dead-letters the record).
    """
    if timestamp_ms < 0:
        raise ValueError(
            f"event time {timestamp_ms} is before the epoch; hopping windows start at 0 or later"
        )
    start = max(0, timestamp_ms - size_ms + slide_ms) // slide_ms * slide_ms
    windows = []
    while start <= timestamp_ms:
        windows.append((start, start + size_ms))
        start += slide_ms
    return windows
