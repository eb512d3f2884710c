"""Stream-table join (ksqlDB, Kafka Streams' `KStreamKTableJoin`), INNER and LEFT.

The table port materializes its topic: an upsert replaces the row of its key, a tombstone
deletes it; neither emits anything. A stream row joins the table as it stands when the row is
taken, which the task's event-time order across ports makes "as of the row's time": a table
update affects stream rows after it, not before. A stream row whose join key is NULL, or that
finds no table row, is dropped by INNER and emitted with NULL table columns by LEFT.
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

STREAM, TABLE = 0, 1


class StreamTableJoinOperator:
    def __init__(
        self,
        kind: JoinKind,
        stream_key: KeyFunction,
        table_key: KeyFunction,
        table_fields: Sequence[str],
        encode_row: Callable[[Row], bytes],
        residual: Callable[[Row], bool] | None = None,
        store: str = "join-right",
    ) -> None:
        if kind not in (JoinKind.INNER, JoinKind.LEFT):
            raise ValueError(f"a stream-table join is INNER or LEFT, not {kind.value}")
        self.kind = kind
        self.stream_key, self.table_key = stream_key, table_key
        self.padding: Row = dict.fromkeys(table_fields)
        self.encode_row = encode_row
        self.residual = residual
        self.store = store
        self.table: dict[int, dict[tuple[object, ...], Row]] = {}
        self.dirty: dict[bytes, Row | None] = {}

    def process(
        self,
        port: int,
        partition: int,
        row: Row | None,
        time_ms: int,
        key: tuple[object, ...] | None = None,
    ) -> list[Output]:
        if port == TABLE:
            self._update(partition, row, key)
            return []
        if row is None:
            return []
        join_key = self.stream_key(row)
        found = None if has_null(join_key) else self.table.get(partition, {}).get(join_key)
        if found is not None:
            joined = {**row, **found}
            if self.residual is None or self.residual(joined):
                return [Output(joined, time_ms, join_key)]
        if self.kind is JoinKind.LEFT:
            return [Output({**row, **self.padding}, time_ms, join_key)]
        return []

    def _update(self, partition: int, row: Row | None, key: tuple[object, ...] | None) -> None:
        """An upsert, or a tombstone (no row: the key comes from the record key)."""
        if row is not None:
            key = self.table_key(row)
        if key is None or has_null(key):
            return
        rows = self.table.setdefault(partition, {})
        if row is None:
            rows.pop(key, None)
        else:
            rows[key] = row
        self.dirty[encode_key(partition, key)] = row

    def on_watermark(self, partition: int, watermark_ms: int) -> list[Output]:
        return []  # table rows live until their tombstone

    def changes(self) -> StoreWrites:
        if not self.dirty:
            return {}
        writes = {
            key: None if row is None else self.encode_row(row) for key, row in self.dirty.items()
        }
        self.dirty.clear()
        return {self.store: writes}

    def rows(self, partition: int) -> int:
        return len(self.table.get(partition, {}))

    def load(self, entries: Iterable[tuple[bytes, Row]]) -> None:
        """Table rows read back from the store (state key, row), after a restart."""
        for raw, row in entries:
            partition = int.from_bytes(raw[:4], "big", signed=True)
            self.table.setdefault(partition, {})[self.table_key(row)] = row

    def drop_partition(self, partition: int) -> None:
        self.table.pop(partition, None)
        prefix = partition_prefix(partition)
        self.dirty = {k: v for k, v in self.dirty.items() if not k.startswith(prefix)}
