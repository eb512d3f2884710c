"""Changelog topics: a compacted Kafka copy of each stateful stage's store, so a pod with an
empty volume rebuilds its state and offsets instead of reprocessing everything.

One changelog per stateful stage, partitioned like its input. At every checkpoint, before the
local write batch, the stage's changed keys go to the partition they belong to, followed by one
offsets record per partition that closes the checkpoint. Restoring a partition replays it and
applies only what a closing offsets record covers, so a checkpoint cut short by a crash is
never half applied.

Key layout: state keys start with their 4-byte partition (first byte < 0x80); de-duplication
entries are prefixed with 0xFE and offsets records are 0xFF + the 4-byte partition. An offsets
record's value is the 8-byte next offset followed by the id of the process that wrote it. A
stage with several input ports (a join) writes the next offset of each further port first, as
0xFF + partition + the 1-byte port number; the record of port 0 closes the checkpoint.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_PARTITION = struct.Struct(">i")
_OFFSET = struct.Struct(">q")
DEDUP_PREFIX = b"\xfe"
OFFSETS_PREFIX = b"\xff"


def offsets_key(partition: int, port: int = 0) -> bytes:
    key = OFFSETS_PREFIX + _PARTITION.pack(partition)
    return key if port == 0 else key + bytes((port,))


def _closing(key: bytes) -> bool:
    return len(key) == 1 + _PARTITION.size


def checkpoint_offset(key: bytes, value: bytes | None) -> int | None:
    """The input offset an offsets record closes its checkpoint at (None for other records)."""
    if not key.startswith(OFFSETS_PREFIX) or value is None or not _closing(key):
        return None
    offset: int = _OFFSET.unpack_from(value)[0]
    return offset


def checkpoint_writer(key: bytes, value: bytes | None) -> bytes | None:
    """The id of the process that wrote an offsets record (None for other records)."""
    if not key.startswith(OFFSETS_PREFIX) or value is None or not _closing(key):
        return None
    return value[_OFFSET.size :]


def partition_range(partition: int) -> tuple[bytes, bytes]:
    """[start, end) of the state keys of one input partition."""
    return _PARTITION.pack(partition), _PARTITION.pack(partition + 1)


@dataclass
class ChangelogRecord:
    partition: int
    key: bytes
    value: bytes | None


def checkpoint_records(
    store_writes: Mapping[bytes, bytes | None],
    dedup_writes: Mapping[tuple[int, bytes], bytes | None],
    offsets: Mapping[int, int],
    writer: bytes = b"",
    port_offsets: Mapping[int, Sequence[int]] | None = None,
) -> list[ChangelogRecord]:
    """What one checkpoint of one stage writes to its changelog, in the order to produce it.

    `store_writes` keys carry their partition in their first four bytes; `dedup_writes` are
    keyed by (partition, local key); `offsets` maps every input partition the stage owns to the
    next offset to consume; `port_offsets` the next offsets of ports 1, 2, ... by partition.
    """
    records = [
        ChangelogRecord(_PARTITION.unpack_from(key)[0], key, value)
        for key, value in store_writes.items()
    ]
    records += [
        ChangelogRecord(partition, DEDUP_PREFIX + key, value)
        for (partition, key), value in dedup_writes.items()
    ]
    for partition, offset in sorted(offsets.items()):
        for port, port_offset in enumerate((port_offsets or {}).get(partition, ()), start=1):
            records.append(
                ChangelogRecord(partition, offsets_key(partition, port), _OFFSET.pack(port_offset))
            )
        records.append(
            ChangelogRecord(partition, offsets_key(partition), _OFFSET.pack(offset) + writer)
        )
    return records


@dataclass
class RestoredPartition:
    store_writes: dict[bytes, bytes | None] = field(default_factory=dict)
    dedup_writes: dict[bytes, bytes | None] = field(default_factory=dict)
    offset: int | None = None  # None: no complete checkpoint in the changelog
    port_offsets: dict[int, int] = field(default_factory=dict)  # of ports 1, 2, ...


def replay(records: Iterable[tuple[bytes, bytes | None]]) -> RestoredPartition:
    """Fold one changelog partition, in order, into the state of its last complete checkpoint."""
    restored = RestoredPartition()
    pending: list[tuple[bytes, bytes | None]] = []
    pending_ports: dict[int, int] = {}
    for key, value in records:
        if key.startswith(OFFSETS_PREFIX) and not _closing(key):
            if value is not None:
                pending_ports[key[-1]] = _OFFSET.unpack_from(value)[0]
            continue
        if key.startswith(OFFSETS_PREFIX):
            for pending_key, pending_value in pending:
                if pending_key.startswith(DEDUP_PREFIX):
                    restored.dedup_writes[pending_key[1:]] = pending_value
                else:
                    restored.store_writes[pending_key] = pending_value
            pending.clear()
            restored.port_offsets.update(pending_ports)
            pending_ports.clear()
            if value is not None:
                restored.offset = _OFFSET.unpack_from(value)[0]
        else:
            pending.append((key, value))
    return restored
