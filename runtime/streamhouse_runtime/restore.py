"""Rebuilding a stage's state from its changelog topic: the partitions a pod owns but has no
current local state for (an empty volume, partitions new to the pod, or a stale local copy)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streamhouse_runtime.exec.dedup import DEDUP_STORE
from streamhouse_runtime.exec.join_stage import JoinStageExecutor
from streamhouse_runtime.exec.pipeline import StageExecutor
from streamhouse_runtime.io.kafka_retry import retrying
from streamhouse_runtime.state.backend import StateBackend
from streamhouse_runtime.state.changelog import checkpoint_offset, checkpoint_writer, replay

log = logging.getLogger(__name__)
Executor = StageExecutor | JoinStageExecutor
RESTORE_TIMEOUT_S = 600.0


class ChangelogRestore:
    def __init__(
        self,
        kafka: Mapping[str, str | int | float | bool],
        query_id: str,
        backend: StateBackend,
        changelogs: Mapping[str, str],
        owned: Callable[[str], list[int]],
        previous_writer: bytes,
    ) -> None:
        self.kafka = kafka
        self.query_id = query_id
        self.backend = backend
        self.changelogs = changelogs
        self.owned = owned
        self.previous_writer = previous_writer

    def restore(self, executor: Executor, positions: dict[tuple[str, int], int]) -> None:
        """Rebuild from the stage's changelog the partitions this pod owns but has no current
        local state for: an empty volume, partitions new to this pod, or stale ones.

        Local state is current when the changelog ends with this pod's last checkpoint of the
        partition: an offsets record with the local offset, written by the process that wrote
        the local checkpoint. Otherwise another pod went on
        with the partition (a scale-out and back), or a checkpoint was cut short after its
        changelog records: resuming from the local copy would re-read input another pod may
        already have purged from an internal topic, so the changelog's state wins."""
        topic = executor.input_topic
        changelog = self.changelogs[executor.store]
        reader = Consumer(
            {**self.kafka, "group.id": f"streamhouse-{self.query_id}-restore",
             "enable.auto.commit": False, "enable.partition.eof": True}
        )  # fmt: skip
        try:
            ends = {}
            for partition in self.owned(topic):
                slot = TopicPartition(changelog, partition)
                ends[partition] = retrying(
                    lambda slot=slot: reader.get_watermark_offsets(slot, timeout=10),  # type: ignore[misc]
                    f"{changelog} offsets",
                )
                low, high = ends[partition]
                local = positions.get((topic, partition))
                if local is None or high <= low:
                    continue
                last = last_record(reader, changelog, partition, high)
                if (
                    last is None
                    or checkpoint_offset(*last) != local
                    or checkpoint_writer(*last) != self.previous_writer
                ):
                    log.info(
                        "local state of %s partition %d is stale (the changelog does not end "
                        "with this pod's checkpoint at offset %d): restoring",
                        executor.store, partition, local,
                    )  # fmt: skip
                    self.drop_partition(executor, partition, positions)
            wanted = [p for p in self.owned(topic) if (topic, p) not in positions]
            for partition in wanted:
                low, high = ends[partition]
                if high <= low:
                    continue
                reader.assign([TopicPartition(changelog, partition, low)])
                records: list[tuple[bytes, bytes | None]] = []
                position = low
                deadline = time.monotonic() + RESTORE_TIMEOUT_S
                # Compaction leaves gaps in offsets: the end-of-partition event ends the read.
                while position < high and time.monotonic() < deadline:
                    for message in reader.consume(10_000, 1.0):
                        error = message.error()
                        if error is not None:
                            if error.code() == KafkaError._PARTITION_EOF:
                                position = high
                            continue
                        key = message.key()
                        if key is not None:
                            records.append((key, message.value()))
                        position = (message.offset() or 0) + 1
                if position < high:
                    raise RuntimeError(f"restoring {changelog}[{partition}] timed out")
                restored = replay(records)
                if restored.offset is None:
                    continue
                offsets = {(topic, partition): restored.offset}
                for port, other in enumerate(executor.input_topics[1:], start=1):
                    offsets[(other, partition)] = restored.port_offsets.get(port, 0)
                self.backend.commit(
                    {
                        **executor.restore_writes(restored.store_writes),
                        DEDUP_STORE: restored.dedup_writes,
                    },
                    offsets,
                )
                positions.update(offsets)
                log.info(
                    "restored %s partition %d from %s (%d records) at offset %d",
                    executor.store, partition, changelog, len(records), restored.offset,
                )  # fmt: skip
        finally:
            reader.close()
        executor.restored()

    def drop_partition(
        self, executor: Executor, partition: int, positions: dict[tuple[str, int], int]
    ) -> None:
        """Delete one partition's local state, de-duplication entries and stored offsets."""
        dedup = {key: None for key in executor.dedup_keys(partition)}
        slots = [(topic, partition) for topic in executor.input_topics]
        self.backend.commit(
            {**executor.drop_writes(partition), DEDUP_STORE: dedup},
            dict.fromkeys(slots),
        )
        for slot in slots:
            positions.pop(slot, None)


def last_record(
    reader: Consumer, topic: str, partition: int, high: int
) -> tuple[bytes, bytes | None] | None:
    """The (key, value) of the record before `high` (None when compaction or a transaction
    marker left no record there)."""
    reader.assign([TopicPartition(topic, partition, high - 1)])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            for message in reader.consume(1, 1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return None
                    continue
                key = message.key()
                return (key, message.value()) if key is not None else None
        raise RuntimeError(f"reading the end of {topic}[{partition}] timed out")
    finally:
        reader.unassign()
