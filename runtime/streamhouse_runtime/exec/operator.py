"""The protocol every stage operator of the stage graph follows (joins first; aggregation,
windows and DISTINCT move onto it next), and the one codec for their state keys.

An operator receives rows from numbered input ports of one task (one stage on one partition),
reacts to the task's watermark, reports its state changes at each checkpoint and forgets a
partition another pod takes over. It never touches Kafka: the driver feeds it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import orjson

Row = dict[str, object]
StoreWrites = dict[str, dict[bytes, bytes | None]]  # store name -> key -> value (None deletes)
KeyFunction = Callable[[Row], tuple[object, ...]]

_PARTITION = struct.Struct(">i")
TIME_SEQUENCE = struct.Struct(">qI")  # a buffered row's time and sequence, at its key's end


class Output(NamedTuple):
    """What an operator emits: a row (None: a tombstone of `key`) at an event time. (A named
    tuple: made once per joined row, it costs a third of a frozen dataclass.)"""

    row: Row | None
    time_ms: int
    key: tuple[object, ...] = ()


class StageOperator(Protocol):
    def process(
        self,
        port: int,
        partition: int,
        row: Row | None,
        time_ms: int,
        key: tuple[object, ...] | None = None,
    ) -> list[Output]:
        """One row from input port `port`; a table tombstone has no row, only its `key`."""
        ...

    def on_watermark(self, partition: int, watermark_ms: int) -> list[Output]:
        """The task's watermark advanced: emit what it completes, expire what it passed."""
        ...

    def changes(self) -> StoreWrites:
        """State writes since the last call, by the plan's store names."""
        ...

    def drop_partition(self, partition: int) -> None:
        """Forget a partition's state (another pod owns it now)."""
        ...


def _key_default(value: object) -> object:
    return str(value)  # DECIMAL, bytes and other non-JSON values by their text


def partition_prefix(partition: int) -> bytes:
    """The first four bytes of every state key of one partition."""
    return _PARTITION.pack(partition)


def encode_key(partition: int, key: Sequence[object]) -> bytes:
    """partition (4 bytes, big-endian) + the key values as a JSON array: explicit, readable
    and stable across processes (never pickle)."""
    return _PARTITION.pack(partition) + orjson.dumps(list(key), default=_key_default)


def encode_timed_key(partition: int, key: Sequence[object], time_ms: int, sequence: int) -> bytes:
    """A buffered row's key: its join key, then time and sequence (big-endian, so RocksDB's
    order is time order within a key); the key part is length-prefixed to stay a prefix."""
    body = orjson.dumps(list(key), default=_key_default)
    return (
        _PARTITION.pack(partition)
        + _PARTITION.pack(len(body))
        + body
        + TIME_SEQUENCE.pack(time_ms, sequence)
    )


def has_null(key: Sequence[object]) -> bool:
    return None in key
