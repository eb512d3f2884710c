"""De-duplication of repartitioned rows: a stage that reads an internal topic drops the rows an
upstream stage sends again after a restart (it re-processes what it had not checkpointed).

Every row written to a repartition topic carries its origin in a header: the input partition
(and, for a stage with several ports, the port) it came from, the input offset, and its
sequence among the rows that one input record produced (a join match or a window may produce
several). Rows of one origin reach a repartition partition in (offset, sequence) order, so
remembering the highest (offset, sequence) applied per (partition, origin) is enough; it is
checkpointed with the state it protects.

Header value: `origin:offset` (sequence 0) or `origin:offset:sequence`.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping
from typing import Any

from streamhouse_runtime.state.backend import StateBackend

SOURCE_HEADER = "streamhouse.source"
DEDUP_STORE = "__dedup__"
_OFFSET = struct.Struct(">q")
_OFFSET_SEQUENCE = struct.Struct(">qI")

Mark = tuple[int, int]  # (offset, sequence)


def origin_header(origin: str, offset: int, sequence: int = 0) -> tuple[str, bytes]:
    """The header a repartitioned row carries."""
    if sequence:
        return SOURCE_HEADER, b"%s:%d:%d" % (origin.encode(), offset, sequence)
    return SOURCE_HEADER, b"%s:%d" % (origin.encode(), offset)


def _encode_mark(mark: Mark) -> bytes:
    offset, sequence = mark
    return _OFFSET.pack(offset) if not sequence else _OFFSET_SEQUENCE.pack(offset, sequence)


def _decode_mark(value: bytes) -> Mark:
    if len(value) == _OFFSET_SEQUENCE.size:
        offset, sequence = _OFFSET_SEQUENCE.unpack(value)
        return offset, sequence
    return _OFFSET.unpack(value)[0], 0


class Deduplicator:
    """The highest (offset, sequence) applied per (input partition, origin) of one stage."""

    def __init__(self, store: str, backend: StateBackend) -> None:
        self.prefix = store.encode() + b"\x00"
        self.backend = backend
        self.marks: dict[tuple[int, str], Mark] = {}
        self.dirty = False

    def duplicate(self, headers: Any, partition: int, port: int = 0) -> bool:
        """True for a row already applied; records the row as applied otherwise. Each input
        port of a stage has its own origins (its own upstream writer)."""
        if not headers:
            return False
        name, origin = headers[0]
        if name != SOURCE_HEADER or origin is None:
            return False
        text = origin.decode() if isinstance(origin, bytes) else str(origin)
        source, _, rest = text.partition(":")
        offset_text, _, sequence_text = rest.partition(":")
        mark = (int(offset_text), int(sequence_text) if sequence_text else 0)
        slot = (partition, source if port == 0 else f"port{port}|{source}")
        if self.marks.get(slot, (-1, 0)) >= mark:
            return True
        self.marks[slot] = mark
        self.dirty = True
        return False

    def _key(self, slot: tuple[int, str]) -> bytes:
        return self.prefix + pickle.dumps(slot, pickle.HIGHEST_PROTOCOL)

    def _slot(self, key: bytes) -> tuple[int, str]:
        partition, source = pickle.loads(key[len(self.prefix) :])
        return int(partition), str(source)

    def changes(self) -> dict[bytes, bytes | None]:
        if not self.dirty:
            return {}
        self.dirty = False
        return {self._key(slot): _encode_mark(mark) for slot, mark in self.marks.items()}

    def retain(self, owned: set[int]) -> None:
        """Forget the entries of input partitions another pod owns now."""
        self.marks = {slot: mark for slot, mark in self.marks.items() if slot[0] in owned}

    def keys(self, partition: int) -> list[bytes]:
        """The stored keys of one input partition."""
        return [
            raw
            for raw, _ in self.backend.scan(DEDUP_STORE, self.prefix, self.prefix[:-1] + b"\x01")
            if self._slot(raw)[0] == partition
        ]

    def load(self) -> None:
        self.marks.clear()
        for raw, value in self.backend.scan(DEDUP_STORE, self.prefix, self.prefix[:-1] + b"\x01"):
            self.marks[self._slot(raw)] = _decode_mark(value)

    def changelog(
        self, writes: Mapping[str, Mapping[bytes, bytes | None]]
    ) -> dict[tuple[int, bytes], bytes | None]:
        """This stage's de-duplication writes of `writes`, keyed by (partition, key)."""
        return {
            (self._slot(key)[0], key): value
            for key, value in writes.get(DEDUP_STORE, {}).items()
            if key.startswith(self.prefix)
        }
