"""Windowed stream-stream join (ksqlDB `WITHIN`, Kafka Streams' `KStreamKStreamJoin`).

A left row at time t matches right rows of the same key with time in
[t - before, t + after]; the joined row carries the later of the two times. Both sides are
buffered by (key, time, sequence) until the watermark passes their last possible partner plus
the grace period: a left row at t waits until t + after + grace, a right row at t until
t + before + grace. Then an outer join emits the rows that never matched, padded with NULLs,
exactly once, and the entry is deleted. A row that arrives after its own window plus grace has
closed is late and dropped (counted by the caller). A row whose join key is NULL can never
match: dropped by INNER and by the side that is not preserved, emitted padded at once by the
preserved side.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from streamhouse_runtime.exec.operator import (
    TIME_SEQUENCE,
    KeyFunction,
    Output,
    Row,
    StoreWrites,
    encode_timed_key,
    has_null,
    partition_prefix,
)
from streamhouse_runtime.sql.query import JoinKind

LEFT, RIGHT = 0, 1


@dataclass
class _Buffered:
    time_ms: int
    sequence: int
    row: Row
    matched: bool = False


@dataclass
class _Side:
    store: str
    key_of: KeyFunction
    fields: Sequence[str]
    preserved: bool
    # partition -> join key -> rows in arrival order
    rows: dict[int, dict[tuple[object, ...], list[_Buffered]]] = field(default_factory=dict)
    dirty: dict[bytes, _Buffered | None] = field(default_factory=dict)


class StreamStreamJoinOperator:
    def __init__(
        self,
        kind: JoinKind,
        left_key: KeyFunction,
        right_key: KeyFunction,
        left_fields: Sequence[str],
        right_fields: Sequence[str],
        before_ms: int,
        after_ms: int,
        grace_ms: int,
        encode_row: Callable[[int, Row], bytes],
        residual: Callable[[Row], bool] | None = None,
        store: str = "join",
    ) -> None:
        self.kind = kind
        self.before_ms, self.after_ms, self.grace_ms = before_ms, after_ms, grace_ms
        self.residual = residual
        self.encode_row = encode_row  # (side, row) -> stored bytes
        self.sides = (
            _Side(f"{store}-left", left_key, left_fields, kind in (JoinKind.LEFT, JoinKind.FULL)),
            _Side(
                f"{store}-right", right_key, right_fields, kind in (JoinKind.RIGHT, JoinKind.FULL)
            ),
        )
        self.sequence = 0
        self.watermark_ms: dict[int, int] = {}
        self.late = 0
        # partition -> heap of (closes at, sequence, port, join key): what expires next
        self.expiry: dict[int, list[tuple[int, int, int, tuple[object, ...]]]] = {}

    # -- rows --------------------------------------------------------------------------------

    def _closes_at(self, side: int, time_ms: int) -> int:
        """The watermark after which a row of `side` at `time_ms` can no longer match."""
        reach = self.after_ms if side == LEFT else self.before_ms
        return time_ms + reach + self.grace_ms

    def _joined(self, left: Row | None, right: Row | None) -> Row:
        row: Row = {}
        if left is not None:
            row.update(left)
        else:
            row.update(dict.fromkeys(self.sides[LEFT].fields))
        if right is not None:
            row.update(right)
        else:
            row.update(dict.fromkeys(self.sides[RIGHT].fields))
        return row

    def process(
        self,
        port: int,
        partition: int,
        row: Row | None,
        time_ms: int,
        key: tuple[object, ...] | None = None,
    ) -> list[Output]:
        if row is None:
            return []  # a stream has no tombstones
        side = self.sides[port]
        key = side.key_of(row)  # the join key, from the row
        if has_null(key):
            if side.preserved:
                padded = self._joined(row, None) if port == LEFT else self._joined(None, row)
                return [Output(padded, time_ms, key)]
            return []
        if self._closes_at(port, time_ms) < self.watermark_ms.get(partition, -(1 << 62)):
            self.late += 1
            return []
        other_port = RIGHT if port == LEFT else LEFT
        other = self.sides[other_port]
        # A left row at t meets right rows in [t - before, t + after]; a right row at t meets
        # left rows in [t - after, t + before].
        low, high = (
            (time_ms - self.before_ms, time_ms + self.after_ms)
            if port == LEFT
            else (time_ms - self.after_ms, time_ms + self.before_ms)
        )
        outputs: list[Output] = []
        entry = _Buffered(time_ms, self.sequence, row)
        self.sequence += 1
        for candidate in other.rows.get(partition, {}).get(key, ()):
            if not low <= candidate.time_ms <= high:
                continue
            joined = (
                self._joined(row, candidate.row)
                if port == LEFT
                else self._joined(candidate.row, row)
            )
            if self.residual is not None and not self.residual(joined):
                continue
            outputs.append(Output(joined, max(time_ms, candidate.time_ms), key))
            entry.matched = True
            if not candidate.matched:
                candidate.matched = True
                self._mark(other, partition, key, candidate)
        side.rows.setdefault(partition, {}).setdefault(key, []).append(entry)
        self._mark(side, partition, key, entry)
        heapq.heappush(
            self.expiry.setdefault(partition, []),
            (self._closes_at(port, time_ms), entry.sequence, port, key),
        )
        return outputs

    def _mark(self, side: _Side, partition: int, key: tuple[object, ...], entry: _Buffered) -> None:
        side.dirty[encode_timed_key(partition, key, entry.time_ms, entry.sequence)] = entry

    # -- time --------------------------------------------------------------------------------

    def on_watermark(self, partition: int, watermark_ms: int) -> list[Output]:
        """Expire rows whose last partner can no longer come; pad the unmatched rows of a
        preserved side, in time order. Cheap when nothing expires (a heap of expiry times),
        so it may run after every row."""
        if watermark_ms <= self.watermark_ms.get(partition, -(1 << 62)):
            return []
        self.watermark_ms[partition] = watermark_ms
        heap = self.expiry.get(partition)
        if not heap or heap[0][0] >= watermark_ms:
            return []
        outputs: list[tuple[int, int, Output]] = []
        while heap and heap[0][0] < watermark_ms:
            _, sequence, port, key = heapq.heappop(heap)
            side = self.sides[port]
            keyed = side.rows.get(partition, {})
            entries = keyed.get(key, [])
            for position, entry in enumerate(entries):
                if entry.sequence == sequence:
                    del entries[position]
                    break
            else:
                continue
            if not entries:
                keyed.pop(key, None)
            side.dirty[encode_timed_key(partition, key, entry.time_ms, entry.sequence)] = None
            if side.preserved and not entry.matched:
                padded = (
                    self._joined(entry.row, None) if port == LEFT else self._joined(None, entry.row)
                )
                outputs.append((entry.time_ms, entry.sequence, Output(padded, entry.time_ms, key)))
        outputs.sort(key=lambda item: (item[0], item[1]))
        return [output for _, _, output in outputs]

    # -- state -------------------------------------------------------------------------------

    def changes(self) -> StoreWrites:
        """Buffered rows written or deleted since the last checkpoint. A stored value is the
        matched flag (1 byte) and the row."""
        writes: StoreWrites = {}
        for port, side in enumerate(self.sides):
            if not side.dirty:
                continue
            writes[side.store] = {
                key: None
                if entry is None
                else (b"\x01" if entry.matched else b"\x00") + self.encode_row(port, entry.row)
                for key, entry in side.dirty.items()
            }
            side.dirty.clear()
        return writes

    def buffered(self, partition: int) -> int:
        return sum(
            len(entries) for side in self.sides for entries in side.rows.get(partition, {}).values()
        )

    def drop_partition(self, partition: int) -> None:
        prefix = partition_prefix(partition)
        for side in self.sides:
            side.rows.pop(partition, None)
            side.dirty = {k: v for k, v in side.dirty.items() if not k.startswith(prefix)}
        self.watermark_ms.pop(partition, None)
        self.expiry.pop(partition, None)

    def load(self, store: str, entries: Iterable[tuple[bytes, bool, Row]]) -> None:
        """Buffered rows read back from `store` (key, matched flag, row), after a restart."""
        port = next(i for i, side in enumerate(self.sides) if side.store == store)
        side = self.sides[port]
        touched: set[tuple[int, tuple[object, ...]]] = set()
        for raw, matched, row in entries:
            partition = int.from_bytes(raw[:4], "big", signed=True)
            time_ms, sequence = TIME_SEQUENCE.unpack(raw[-TIME_SEQUENCE.size :])
            key = side.key_of(row)
            entry = _Buffered(time_ms, sequence, row, matched)
            side.rows.setdefault(partition, {}).setdefault(key, []).append(entry)
            touched.add((partition, key))
            heapq.heappush(
                self.expiry.setdefault(partition, []),
                (self._closes_at(port, time_ms), sequence, port, key),
            )
            self.sequence = max(self.sequence, sequence + 1)
        for partition, key in touched:
            side.rows[partition][key].sort(key=lambda entry: entry.sequence)
