"""The input queues of one task (one stage on one partition number), taken in event-time order
across ports, as Kafka Streams' `PartitionGroup` does.

Each port has a FIFO queue of decoded records (a port's own records stay in offset order).
The next record is the head with the smallest event time; a table port's head goes first on a
tie, so an update and a stream record of the same time join as "update, then record". When a
port's queue is empty the task waits for it while its partition is known to hold more records
(Kafka Streams' `max.task.idle.ms` = 0: wait for data known to exist), does not wait when it is
caught up, and waits at most `max_idle_ms` when nothing is known of it yet; at the end of the
input it never waits. A port that is bootstrapping (a table read to its end offset at start)
is taken alone until it is done.
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

    def take(
        self,
        now_ms: float,
        max_idle_ms: float,
        caught_up: Callable[[int], bool | None],
        final: bool,
    ) -> tuple[int, list[Queued]] | None:
        """The next records to process: a run of one port's records, each of which is the
        one the event-time order takes next, or None to wait for more input."""
        queues = self.queues
        booting = self._bootstrapping()
        if booting is not None and not final:
            queue = queues[booting]
            end = self.bootstrap_end[booting]
            assert end is not None
            run = []
            while queue and queue[0].offset < end:
                run.append(queue.popleft())
            if not run:
                # Past the end offset (a record beyond it is queued), or caught up short of
                # it (the last offsets held a transaction marker or were compacted away).
                if queue or caught_up(booting) is True:
                    self.bootstrap_end[booting] = None
                    return self.take(now_ms, max_idle_ms, caught_up, final)
                return None
            return booting, self._taken(booting, run, now_ms)
        best = -1
        best_time = 0
        others: list[int] = []
        for port, queue in enumerate(queues):
            if not queue:
                if final:
                    continue
                state = caught_up(port)  # True: caught up, False: more known, None: unknown
                if state or (state is None and now_ms - self.empty_since[port] >= max_idle_ms):
                    continue
                return None  # wait for this port
            head = queue[0].time_ms
            if (
                best < 0
                or head < best_time
                or (head == best_time and self.tables[port] and not self.tables[best])
            ):
                if best >= 0:
                    others.append(best)
                best, best_time = port, head
            else:
                others.append(port)
        if best < 0:
            return None
        queue = queues[best]
        if not others:
            run = list(queue)
            queue.clear()
            return best, self._taken(best, run, now_ms)
        # Up to the next head of another port (ties go to a table port).
        limit = min(queues[p][0].time_ms for p in others)
        table = self.tables[best]
        others_table = any(self.tables[p] for p in others)
        run = [queue.popleft()]
        while queue:
            head = queue[0].time_ms
            if head < limit or (head == limit and table and not others_table):
                run.append(queue.popleft())
            else:
                break
        return best, self._taken(best, run, now_ms)

    def _taken(self, port: int, run: list[Queued], now_ms: float) -> list[Queued]:
        self.next_offset[port] = run[-1].offset + 1
        if not self.queues[port]:
            self.empty_since[port] = now_ms
        return run

    def clear(self) -> None:
        for queue in self.queues:
            queue.clear()
