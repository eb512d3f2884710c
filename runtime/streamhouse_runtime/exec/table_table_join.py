"""Table-table join on the primary key (ksqlDB, Kafka Streams' `KTableKTableJoin`): INNER,
LEFT, RIGHT and FULL OUTER, producing a table.

Both sides are materialized: an upsert replaces its key's row, a tombstone deletes it. After
each change of either side the joined row of that key is emitted as it now stands, padded
with NULLs for a missing side where the join kind keeps it; when the change leaves no row the
join kind keeps (an INNER join losing one side, an outer join losing both), a tombstone of the
key is emitted, and only if a row had been emitted for it (the key was visible before the
change). The output carries the later of the two sides' times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from streamhouse_runtime.exec.operator import (
    KeyFunction,
    Output,
    Row,
    StoreWrites,
    encode_key,
    has_null,
    partition_prefix,
)
from streamhouse_runtime.sql.query import JoinKind

LEFT, RIGHT = 0, 1
Timed = tuple[Row, int]  # a side's row and its event time


class TableTableJoinOperator:
    def __init__(
        self,
        kind: JoinKind,
        left_key: KeyFunction,
        right_key: KeyFunction,
        left_fields: Sequence[str],
        right_fields: Sequence[str],
        encode_row: Callable[[Timed], bytes],
        residual: Callable[[Row], bool] | None = None,
        store: str = "join",
    ) -> None:
        self.kind = kind
        self.keys = (left_key, right_key)
        self.padding = (dict.fromkeys(left_fields), dict.fromkeys(right_fields))
        self.encode_row = encode_row
        self.residual = residual
        self.stores = (f"{store}-left", f"{store}-right")
        # side -> partition -> key -> (row, time)
        self.rows: tuple[dict[int, dict[tuple[object, ...], Timed]], ...] = ({}, {})
        self.dirty: tuple[dict[bytes, Timed | None], ...] = ({}, {})

    def _joined(self, left: Timed | None, right: Timed | None) -> Row | None:
        """The row this key shows with these sides, or None when the join kind keeps none."""
        kind = self.kind
        if left is None and right is None:
            return None
        if left is None and kind not in (JoinKind.RIGHT, JoinKind.FULL):
            return None
        if right is None and kind not in (JoinKind.LEFT, JoinKind.FULL):
            return None
        row = {**(left[0] if left is not None else self.padding[LEFT])}
        row.update(right[0] if right is not None else self.padding[RIGHT])
        matched = left is not None and right is not None
        if matched and self.residual is not None and not self.residual(row):
            return None
        return row

    def process(
        self,
        port: int,
        partition: int,
        row: Row | None,
        time_ms: int,
        key: tuple[object, ...] | None = None,
    ) -> list[Output]:
        if row is not None:
            key = self.keys[port](row)
        if key is None or has_null(key):
            return []  # a table row without a key never joins
        mine = self.rows[port].setdefault(partition, {})
        theirs = self.rows[1 - port].get(partition, {})
        before = mine.get(key)
        other = theirs.get(key)
        after: Timed | None = (row, time_ms) if row is not None else None
        if after is None:
            mine.pop(key, None)
        else:
            mine[key] = after
        self.dirty[port][encode_key(partition, key)] = after
        old = (before, other) if port == LEFT else (other, before)
        new = (after, other) if port == LEFT else (other, after)
        joined = self._joined(*new)
        at = max(time_ms, other[1]) if other is not None else time_ms
        if joined is not None:
            return [Output(joined, at, key)]
        if self._joined(*old) is not None:
            return [Output(None, at, key)]  # the key's row is gone
        return []

    def on_watermark(self, partition: int, watermark_ms: int) -> list[Output]:
        return []  # table rows live until their tombstone

    def changes(self) -> StoreWrites:
        writes: StoreWrites = {}
        for side, dirty in enumerate(self.dirty):
            if dirty:
                writes[self.stores[side]] = {
                    k: None if v is None else self.encode_row(v) for k, v in dirty.items()
                }
                dirty.clear()
        return writes

    def load(self, store: str, entries: Iterable[tuple[bytes, Timed]]) -> None:
        """One side's rows read back from its store (state key, (row, time)), after a restart."""
        side = self.stores.index(store)
        for raw, timed in entries:
            partition = int.from_bytes(raw[:4], "big", signed=True)
            self.rows[side].setdefault(partition, {})[self.keys[side](timed[0])] = timed

    def partitions(self) -> set[int]:
        return set(self.rows[LEFT]) | set(self.rows[RIGHT])

    def entries(self) -> int:
        return sum(len(keyed) for side in self.rows for keyed in side.values())

    def drop_partition(self, partition: int) -> None:
        prefix = partition_prefix(partition)
        for side in (LEFT, RIGHT):
            self.rows[side].pop(partition, None)
            dirty = self.dirty[side]
            for key in [k for k in dirty if k.startswith(prefix)]:
                del dirty[key]
