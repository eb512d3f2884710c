"""The input queues of one task (one stage on one partition number), taken in event-time order
across ports, as Kafka Streams' `PartitionGroup` does.

Each port has a FIFO queue of decoded records (a port's own records stay in offset order).
The next record is the head with the smallest event time; a table port's head goes first on a
tie, so an update and a stream record of the same time join as "update, then record". When a
port's queue is empty the task waits for it, unless the port is caught up (nothing more is
known to be there), or it has been empty for `max_idle_ms`, or the input is over. A port that
is bootstrapping (a table read to its end offset at start) is taken alone until it is done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

NEVER = -(1 << 62)


@dataclass(slots=True)
class Queued:
    time_ms: int
    offset: int
    record: Any  # the KafkaRecord
    row: dict[str, object] | None  # None: a table tombstone, or a record that failed to decode
    key: tuple[object, ...] | None = None
    failed: bool = False  # dead-lettered when it was queued; only its offset counts


class PortQueues:
    def __init__(self, tables: Sequence[bool], now_ms: float) -> None:
        self.tables = list(tables)
        self.queues: list[deque[Queued]] = [deque() for _ in tables]
        self.empty_since = [now_ms for _ in tables]
        self.bootstrap_end: list[int | None] = [None for _ in tables]
        self.next_offset: list[int | None] = [None for _ in tables]

    def push(self, port: int, item: Queued) -> None:
        self.queues[port].append(item)

    def size(self, port: int) -> int:
        return len(self.queues[port])

    def _bootstrapping(self) -> int | None:
        for port, end in enumerate(self.bootstrap_end):
            if end is None:
                continue
            position = self.next_offset[port]
            if position is not None and position >= end:
                self.bootstrap_end[port] = None  # done
                continue
            return port
        return None

    def pop(
        self, now_ms: float, max_idle_ms: float, caught_up: Callable[[int], bool], final: bool
    ) -> tuple[int, Queued] | None:
        """The next record to process (port, item), or None to wait for more input."""
        queues = self.queues
        booting = self._bootstrapping()
        if booting is not None and not final:
            if not queues[booting]:
                return None
            return booting, self._take(booting, now_ms)
        best = -1
        best_time = 0
        for port, queue in enumerate(queues):
            if not queue:
                if final or caught_up(port) or now_ms - self.empty_since[port] >= max_idle_ms:
                    continue
                return None  # wait for this port
            head = queue[0].time_ms
            if (
                best < 0
                or head < best_time
                or (head == best_time and self.tables[port] and not self.tables[best])
            ):
                best, best_time = port, head
        if best < 0:
            return None
        return best, self._take(best, now_ms)

    def _take(self, port: int, now_ms: float) -> Queued:
        item = self.queues[port].popleft()
        self.next_offset[port] = item.offset + 1
        if not self.queues[port]:
            self.empty_since[port] = now_ms
        return item

    def clear(self) -> None:
        for queue in self.queues:
            queue.clear()
