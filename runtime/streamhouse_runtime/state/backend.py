"""State backends: where operators' state and the consumed offsets live.

Operators keep hot state in memory and hand the backend one set of changes per checkpoint;
`commit` writes those changes and the offsets they correspond to atomically (one RocksDB write
batch), so after a crash the state always matches the offsets it is stored with.
"""

from __future__ import annotations

import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rocksdict import (
    BlockBasedOptions,
    Cache,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

TopicPartition = tuple[str, int]
Changes = Mapping[str, Mapping[bytes, bytes | None]]  # store -> key -> value (None deletes)

OFFSETS_STORE = "__offsets__"
META_STORE = "__meta__"
_OFFSET = struct.Struct(">q")


def _offset_key(topic: str, partition: int) -> bytes:
    return topic.encode() + b"\x00" + _OFFSET.pack(partition)


def _decode_offset_key(key: bytes) -> TopicPartition:
    return key[:-9].decode(), _OFFSET.unpack(key[-8:])[0]


class StateBackend(ABC):
    """A set of named stores plus the offsets and metadata committed with them."""

    @abstractmethod
    def get(self, store: str, key: bytes) -> bytes | None:
        """The committed value of `key` in `store`."""

    @abstractmethod
    def scan(
        self, store: str, start: bytes = b"", end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Committed entries with start <= key < end, in key order."""

    def last_key(self, store: str, start: bytes, end: bytes) -> bytes | None:
        """The largest committed key in [start, end), or None."""
        last = None
        for key, _ in self.scan(store, start, end):
            last = key
        return last

    @abstractmethod
    def commit(
        self,
        changes: Changes,
        offsets: Mapping[TopicPartition, int | None],
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        """Atomically apply `changes` and record `offsets` (the next offset to consume; None
        forgets a partition's offset)."""

    @abstractmethod
    def offsets(self) -> dict[TopicPartition, int]:
        """The offsets stored by the last commit."""

    def metadata(self, name: str) -> bytes | None:
        return self.get(META_STORE, name.encode())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; the memory backend has none."""


class MemoryStateBackend(StateBackend):
    """Everything in dicts: for `streamhouse test` and unit tests."""

    def __init__(self) -> None:
        self._stores: dict[str, dict[bytes, bytes]] = {}

    def get(self, store: str, key: bytes) -> bytes | None:
        return self._stores.get(store, {}).get(key)

    def scan(
        self, store: str, start: bytes = b"", end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        entries = self._stores.get(store, {})
        for key in sorted(entries):
            if key >= start and (end is None or key < end):
                yield key, entries[key]

    def commit(
        self,
        changes: Changes,
        offsets: Mapping[TopicPartition, int | None],
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        for store, entries in changes.items():
            target = self._stores.setdefault(store, {})
            for key, value in entries.items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
        stored = self._stores.setdefault(OFFSETS_STORE, {})
        for (topic, partition), offset in offsets.items():
            if offset is None:
                stored.pop(_offset_key(topic, partition), None)
            else:
                stored[_offset_key(topic, partition)] = _OFFSET.pack(offset)
        meta = self._stores.setdefault(META_STORE, {})
        for name, value in (metadata or {}).items():
            meta[name.encode()] = value

    def offsets(self) -> dict[TopicPartition, int]:
        return {
            _decode_offset_key(key): _OFFSET.unpack(value)[0]
            for key, value in self._stores.get(OFFSETS_STORE, {}).items()
        }


def rocksdb_options(memory_budget_bytes: int) -> Options:
    """RocksDB options sized from the pod's memory budget.

    A third of the budget goes to the block cache (shared by every column family) and a
    sixth to write buffers; bloom filters keep point lookups on large state off the disk.
    """
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_max_background_jobs(2)
    write_buffer = max(4 << 20, memory_budget_bytes // 12)
    options.set_write_buffer_size(write_buffer)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(max(8 << 20, memory_budget_bytes // 3)))
    table.set_bloom_filter(10, False)
    table.set_cache_index_and_filter_blocks(True)
    options.set_block_based_table_factory(table)
    return options


class RocksdbStateBackend(StateBackend):
    """One RocksDB database in the pod's data folder, one column family per store."""

    def __init__(self, path: Path, memory_budget_bytes: int = 256 << 20) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._options = rocksdb_options(memory_budget_bytes)
        existing: list[str] = []
        if (path / "CURRENT").exists():
            existing = Rdict.list_cf(str(path), self._options)
        families = {name: self._options for name in existing if name != "default"}
        self._db = Rdict(str(path), self._options, column_families=families)
        self._families: dict[str, Any] = {}
        self._families_lock = threading.Lock()
        # rocksdict flushes the memtables whenever a column family's Rdict is dropped: a view
        # made per call would write a tiny SST file (and feed compactions) on every read.
        self._views: dict[str, Rdict] = {}
        self._write_options = WriteOptions()
        self._write_options.sync = False  # WAL on; the changelog covers a lost machine
        self.path = path

    def _family(self, store: str) -> Any:
        family = self._families.get(store)
        if family is None:
            with self._families_lock:  # results reads come from the HTTP worker threads
                return self._new_family(store)
        return family

    def _new_family(self, store: str) -> Any:
        family = self._families.get(store)
        if family is None:
            if store in Rdict.list_cf(str(self.path), self._options):
                family = self._db.get_column_family_handle(store)
            else:
                self._db.create_column_family(store, self._options)
                family = self._db.get_column_family_handle(store)
            self._families[store] = family
        return family

    def _view(self, store: str) -> Rdict:
        view = self._views.get(store)
        if view is None:
            view = self._views[store] = self._db.get_column_family(store)
        return view

    def get(self, store: str, key: bytes) -> bytes | None:
        self._family(store)
        value = self._view(store).get(key)
        return value if value is None else bytes(value)

    def scan(
        self, store: str, start: bytes = b"", end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self._family(store)
        read_options = ReadOptions()
        if end is not None:
            read_options.set_iterate_upper_bound(end)
        iterator = self._view(store).iter(read_options)
        iterator.seek(start)
        while iterator.valid():
            yield bytes(iterator.key()), bytes(iterator.value())
            iterator.next()

    def last_key(self, store: str, start: bytes, end: bytes) -> bytes | None:
        self._family(store)
        iterator = self._view(store).iter(ReadOptions())
        iterator.seek_for_prev(end)
        while iterator.valid():
            key = bytes(iterator.key())
            if key < end:
                return key if key >= start else None
            iterator.prev()
        return None

    def commit(
        self,
        changes: Changes,
        offsets: Mapping[TopicPartition, int | None],
        metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        batch = WriteBatch(raw_mode=True)
        for store, entries in changes.items():
            family = self._family(store)
            for key, value in entries.items():
                if value is None:
                    batch.delete(key, family)
                else:
                    batch.put(key, value, family)
        offsets_family = self._family(OFFSETS_STORE)
        for (topic, partition), offset in offsets.items():
            if offset is None:
                batch.delete(_offset_key(topic, partition), offsets_family)
            else:
                batch.put(_offset_key(topic, partition), _OFFSET.pack(offset), offsets_family)
        if metadata:
            meta_family = self._family(META_STORE)
            for name, value in metadata.items():
                batch.put(name.encode(), value, meta_family)
        self._db.write(batch, self._write_options)

    def offsets(self) -> dict[TopicPartition, int]:
        return {
            _decode_offset_key(key): _OFFSET.unpack(value)[0]
            for key, value in self.scan(OFFSETS_STORE)
        }

    def approximate_size_bytes(self) -> int:
        total = 0
        for store in self._families:
            value = self._view(store).property_int_value("rocksdb.estimate-live-data-size")
            total += int(value or 0)
        return total

    def close(self) -> None:
        self._views.clear()
        self._families.clear()
        self._db.close()
