"""Pull reads of a TABLE query's materialized rows, from the committed state of its pod.

A pod serves the rows of the partitions it owns, as of its last checkpoint (at most
`checkpoint_interval_ms` old): the same rows the output topic holds once compacted, computed
from the stored accumulators by the stage's own result and HAVING/projection code.

Reads run on the HTTP worker threads while the main loop processes records. They only read:
each partition is one RocksDB iterator, which sees one committed write batch (a consistent
snapshot), and RocksDB serves readers and the writer concurrently. Decoding rows is Python
work that holds the GIL, so a read steps aside (sleeps, releasing it) after every
`YIELD_EVERY` entries: the processing loop waits at most one such step (about a millisecond)
at a time, never a whole page, and a read takes longer instead. Every request is bounded: at
most `MAX_LIMIT` rows returned and `MAX_EXAMINED` stored entries looked at; a request that
stops early returns a continuation token (the last stored key it examined).

Only what state holds can be read: windowed aggregations keep a window until it closes
(`EMIT FINAL`) or its grace ends, so a windowed table answers for open windows.
"""

from __future__ import annotations

import pickle
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamhouse_runtime.exec.pipeline import StageExecutor

# The operators' own key codec, so a lookup encodes a key exactly as it was stored.
from streamhouse_runtime.exec.stateful import AggregateOperator, _parse_window_key
from streamhouse_runtime.state.backend import StateBackend

Row = dict[str, object]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_EXAMINED = 10_000
YIELD_EVERY = 32  # stored entries decoded between two steps aside
YIELD_S = 0.001

_PARTITION = struct.Struct(">i")
_TIME_BIAS = 1 << 63  # window keys hold biased big-endian times (see exec/stateful.py)


class NotATable(Exception):
    """The query keeps no aggregate state to read (a STREAM, or a stateless query)."""


@dataclass(frozen=True)
class ResultRow:
    key: tuple[object, ...]
    row: Row
    window: tuple[int, int] | None  # (start, end) as the output reports them


@dataclass(frozen=True)
class ResultPage:
    rows: list[ResultRow]
    next_token: str | None  # hex of the last stored key examined, when more may follow
    partitions: list[int]
    windowed: bool


class TableReader:
    """Reads the final aggregate of one pod's query (the stage that writes the sink)."""

    def __init__(
        self,
        executor: StageExecutor,
        backend: StateBackend,
        owned_partitions: Callable[[], Sequence[int]],
    ) -> None:
        window_op, aggregate_op = executor.window_op, executor.aggregate_op
        if window_op is None and aggregate_op is None:
            raise NotATable("the query keeps no aggregate state")
        self.backend = backend
        self.store = executor.store
        self.post = executor.post
        self.owned_partitions = owned_partitions
        self.windowed = window_op is not None
        # The key columns as the output names them (the operators' own names are internal).
        output = executor.spec.output
        self.key_names = list(output.schema.key) if output is not None else []
        if window_op is not None:
            self.result_row = window_op.result_row
            self.end_shift = window_op.end_shift
        else:
            assert aggregate_op is not None
            self.result_row = aggregate_op.result_row
            self.end_shift = 0

    def read(
        self,
        key: tuple[object, ...] | None = None,
        window_start_from: int | None = None,
        window_start_to: int | None = None,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> ResultPage:
        """Rows in stored order (partition, then key; windows by end), optionally only one
        key and windows starting in [window_start_from, window_start_to)."""
        limit = max(1, min(limit, MAX_LIMIT))
        resume = bytes.fromhex(after) if after else b""
        partitions = sorted(self.owned_partitions())
        rows: list[ResultRow] = []
        examined = 0
        for partition in partitions:
            prefix = _PARTITION.pack(partition)
            upper = _PARTITION.pack(partition + 1)
            if resume and resume >= upper:
                continue
            if key is not None and not self.windowed:
                # A running aggregate: one stored entry per key and partition.
                if resume and resume >= prefix:
                    continue
                stored = self.backend.get(self.store, AggregateOperator._key(partition, key))
                examined += 1
                if stored is not None:
                    self._append(rows, key, None, stored)
                continue
            start = prefix
            if self.windowed and window_start_from is not None:
                # A window ends after it starts: nothing before this end can match.
                start = prefix + struct.pack(">Q", (window_start_from + _TIME_BIAS) & (2**64 - 1))
            if resume and resume >= start:
                start = resume + b"\x00"
            for raw, stored in self.backend.scan(self.store, start, upper):
                examined += 1
                if examined % YIELD_EVERY == 0:
                    time.sleep(YIELD_S)  # lets the processing loop have the GIL
                group, window = self._decode_key(raw)
                wanted_key = key is None or group == key
                if wanted_key and (
                    window is None or _in_range(window[0], window_start_from, window_start_to)
                ):
                    self._append(rows, group, window, stored)
                if len(rows) >= limit or examined >= MAX_EXAMINED:
                    return ResultPage(rows, raw.hex(), partitions, self.windowed)
        return ResultPage(rows, None, partitions, self.windowed)

    def _decode_key(self, raw: bytes) -> tuple[tuple[object, ...], tuple[int, int] | None]:
        if not self.windowed:
            group: tuple[object, ...] = pickle.loads(raw[_PARTITION.size :])
            return group, None
        _, end, start, group = _parse_window_key(raw)
        return group, (start, end)

    def _append(
        self,
        rows: list[ResultRow],
        group: tuple[object, ...],
        window: tuple[int, int] | None,
        stored: bytes,
    ) -> None:
        accumulators, _ = pickle.loads(stored)
        row: Row | None = self.result_row(group, accumulators)
        assert row is not None
        reported: tuple[int, int] | None = None
        if window is not None:
            reported = (window[0], window[1] - self.end_shift)
            row["window_start"], row["window_end"] = reported
        if self.post is not None:
            row = self.post(row)
            if row is None:  # HAVING drops the group: the table has no row for it
                return
        rows.append(ResultRow(group, row, reported))


def _in_range(start: int, low: int | None, high: int | None) -> bool:
    return (low is None or start >= low) and (high is None or start < high)
