"""`streamhouse run`: the process every query pod runs.

Partition ownership is static: pod `ordinal` of `replicas` owns every input partition p with
p % replicas == ordinal, for the source and the internal topics alike. A StatefulSet ordinal
is a stable identity and each pod's RocksDB lives on its own volume, so a partition is always
processed by the pod whose volume holds its state and offsets; a consumer-group rebalance
could hand it to a pod without them. The consumer group id is still set (and committed after
each checkpoint) so the usual lag tools see the query, but RocksDB holds the offsets that
count. A partition without stored offsets starts at the earliest offset: a new query never
silently skips the backlog.

Checkpoint, every `checkpoint_interval_ms`: close due windows, wait until the producer has
delivered every output of the interval, then write state changes and the next offsets in one
RocksDB write batch. After a crash the pod resumes from that batch: no input is lost and no
checkpointed input counts twice; outputs produced after it may repeat (at-least-once).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import logging
import shutil
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from streamhouse_runtime.config import RuntimeConfig
from streamhouse_runtime.endpoints import HealthState, results_route, serve
from streamhouse_runtime.exec.dedup import DEDUP_STORE
from streamhouse_runtime.exec.join_stage import JoinStageExecutor
from streamhouse_runtime.exec.pipeline import (
    ErrorPolicy,
    LatePolicy,
    QueryFailed,
    StageExecutor,
    StageSettings,
)
from streamhouse_runtime.exec.results import TableReader
from streamhouse_runtime.exec.topology import (
    JoinStageSpec,
    internal_topic,
    plan_fingerprint,
    split_stages,
    stage_ports,
)
from streamhouse_runtime.io.kafka_sink import ProducerSink
from streamhouse_runtime.io.limits import TopicLimits, limits_from_config
from streamhouse_runtime.io.registry import SchemaRegistry
from streamhouse_runtime.metrics import RuntimeMetrics
from streamhouse_runtime.plan.nodes import Repartition, Sink, Source
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.upgrade import state_fingerprint
from streamhouse_runtime.program import load_single_query, load_udfs
from streamhouse_runtime.sql.compatibility import parse_compatibility
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.state.backend import RocksdbStateBackend
from streamhouse_runtime.state.changelog import (
    checkpoint_offset,
    checkpoint_records,
    checkpoint_writer,
    replay,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Executor = StageExecutor | JoinStageExecutor

PURGE_INTERVAL_S = 30.0
WRITER = "writer"  # metadata: id of the process that wrote the local checkpoint
STATE_LAYOUT = "state-layout"  # metadata: plan.upgrade.state_fingerprint of the state's query
RESTORE_TIMEOUT_S = 600.0
PRODUCER_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes
PARTITIONER = "partitioner"  # metadata: the producer partitioner the state's outputs use
JAVA_PARTITIONER = "murmur2_random"
LEGACY_PARTITIONER = "consistent_random"  # librdkafka's default, used before murmur2
REFUSAL_ROUNDS = 5  # flushes that may dead-letter refused outputs before a checkpoint fails


class QueryRuntime:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.metrics = RuntimeMetrics()
        self.health = HealthState()
        self.stopping = False
        sql = Path(config.query_file).read_text()
        self.program, self.statement = load_single_query(
            sql, compatibility=parse_compatibility(config.compatibility)
        )
        plan = plan_statement(self.statement)
        assert isinstance(plan, Sink)
        self.plan = plan
        self.fingerprint = plan_fingerprint(plan)
        self.state_layout = state_fingerprint(plan)
        self.query_id = config.query_id or hashlib.sha256(sql.encode()).hexdigest()[:12]
        self.state_id = config.state_id or self.query_id
        self.stages = split_stages(plan)
        self.ordinal = config.resolved_ordinal()
        self.replicas = max(1, config.replicas)
        state_dir = _state_dir(Path(config.data_dir), self.state_id, config.reset_state)
        self.backend = RocksdbStateBackend(state_dir, config.memory_limit_bytes // 2)
        self.kafka = config.kafka_settings()
        self.dead_letter_topic = config.dead_letter_topic or f"streamhouse-{self.query_id}-dlq"
        registry = (
            SchemaRegistry(config.schema_registry_url) if config.schema_registry_url else None
        )
        settings = StageSettings(
            compatibility=self.program.compatibility,
            query_id=self.query_id,
            state_id=self.state_id,
            dead_letter_topic=self.dead_letter_topic,
            error_policy=ErrorPolicy(config.error_policy),
            late_policy=LatePolicy(config.late_policy),
            lateness_ms=config.lateness_ms,
            idle_timeout_ms=config.idle_timeout_ms,
            # Roughly 200 bytes per hot entry; a quarter of the memory budget for hot state.
            cache_entries=max(10_000, config.memory_limit_bytes // 4 // 200),
            registry=registry,
            udfs=load_udfs(self.program, config.udf_path),
        )
        self.admin = AdminClient(self.kafka)
        self.partitions = self._prepare_topics()
        settings.output_limits = self._topic_limits(self.plan.topic)
        settings.dead_letter_limits = self._topic_limits(self.dead_letter_topic)
        self.internal_topics = {
            internal_topic(self.state_id, spec.output.topic_suffix)
            for spec in self.stages
            if isinstance(spec.output, Repartition)
        }
        self.changelogs = {
            f"stage-{spec.index}": internal_topic(self.state_id, f"stage-{spec.index}-changelog")
            for spec in self.stages
        }
        self.next_purge = 0.0
        # Every stage's executor, in data-flow order, and the executor of each input topic.
        self.stage_executors: list[Executor] = [
            JoinStageExecutor(spec, settings, self.backend)
            if isinstance(spec, JoinStageSpec)
            else StageExecutor(spec, settings, self.backend)
            for spec in self.stages
        ]
        self.executors: dict[str, Executor] = {
            topic: executor for executor in self.stage_executors for topic in executor.input_topics
        }
        self.paused: set[tuple[str, int]] = set()
        self.positions: dict[tuple[str, int], int] = dict(self.backend.offsets())
        # Who wrote the local checkpoint, and who writes from now on: the changelog's offsets
        # records carry their writer, which tells this pod's state from another pod's.
        self.previous_writer = self.backend.metadata(WRITER) or b""
        self.writer = uuid.uuid4().bytes
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.sink: ProducerSink
        self.published_out: dict[str, int] = {}

    # -- set-up ----------------------------------------------------------------------------

    def _prepare_topics(self) -> dict[str, int]:
        """Partition counts of every input; creates missing output and internal topics.

        Internal topics get the partition count of the query's first source topic, except a
        repartition topic that a join reads next to a source topic: it gets that topic's
        count (the two sides of a join must be co-partitioned)."""
        admin = self.admin
        metadata = admin.list_topics(timeout=30)
        sources = [
            port.reads.topic
            for spec in self.stages
            for port in stage_ports(spec)
            if isinstance(port.reads, Source)
        ]
        counts: dict[str, int] = {}
        for topic in sources:
            if topic not in metadata.topics or metadata.topics[topic].error:
                raise SystemExit(f"source topic {topic!r} does not exist")
            counts[topic] = len(metadata.topics[topic].partitions)
        partitions = counts[sources[0]]
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        joined_with: dict[str, int] = {}
        for spec in self.stages:
            direct = [p.reads.topic for p in stage_ports(spec) if isinstance(p.reads, Source)]
            for port in stage_ports(spec):
                if isinstance(port.reads, Repartition) and direct and len(stage_ports(spec)) > 1:
                    joined_with[port.reads.topic_suffix] = counts[direct[0]]
        for spec in self.stages:
            if isinstance(spec.output, Repartition):
                name = internal_topic(self.state_id, spec.output.topic_suffix)
                # Records keep their event time as timestamp, which may be old: only our own
                # purge after each checkpoint may delete them, never time retention.
                count = joined_with.get(spec.output.topic_suffix, partitions)
                wanted[name] = (count, {"retention.ms": "-1"})
        for spec in self.stages:
            if spec.stateful is not None or not spec.is_source_stage:
                changelog = internal_topic(self.state_id, f"stage-{spec.index}-changelog")
                first = stage_ports(spec)[0].reads
                count = (
                    counts[first.topic]
                    if isinstance(first, Source)
                    else wanted[internal_topic(self.state_id, first.topic_suffix)][0]
                )
                wanted[changelog] = (count, {"cleanup.policy": "compact"})
        output_partitions = self.plan.partitions or partitions
        compacted = (
            {"cleanup.policy": "compact"}
            if self.statement.sink and (self.statement.sink.kind.value == "TABLE")
            else {}
        )
        wanted[self.plan.topic] = (output_partitions, compacted)
        wanted[self.dead_letter_topic] = (1, {})
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=-1, config=config)
            for name, (count, config) in wanted.items()
            if name not in metadata.topics
        ]
        if missing:
            for name, future in admin.create_topics(missing, operation_timeout=30).items():
                try:
                    future.result(timeout=30)
                    log.info("created topic %s", name)
                except KafkaException as error:
                    if "TOPIC_ALREADY_EXISTS" not in str(error):
                        raise
        for name, (count, _) in wanted.items():
            existing = metadata.topics.get(name)
            counts[name] = len(existing.partitions) if existing and not existing.error else count
        return counts

    def _copartition_problem(self) -> str:
        """Why the inputs of a join cannot meet, from the partition counts on the broker
        (the declared counts are checked at validation; these are only known here)."""
        for spec in self.stages:
            if not isinstance(spec, JoinStageSpec):
                continue
            topics = [
                p.reads.topic
                if isinstance(p.reads, Source)
                else internal_topic(self.state_id, p.reads.topic_suffix)
                for p in spec.ports
            ]
            found = [self.partitions[t] for t in topics]
            if len(set(found)) > 1:
                listed = " and ".join(
                    f"{t} ({n} partitions)" for t, n in zip(topics, found, strict=True)
                )
                most = max(found)
                return (
                    f"a join reads {listed}, but its inputs must be co-partitioned (the same "
                    "partition count); give the topics the same number of partitions, or re-key "
                    f"one side into a topic with {most} partitions first (CREATE STREAM ... WITH "
                    f"(partitions={most}) AS SELECT * FROM ... PARTITION BY <join key>)"
                )
        return ""

    def _topic_limits(self, topic: str) -> TopicLimits:
        """What `topic` accepts (size, keys, timestamps), read once at start; the producer's
        own `message.max.bytes` caps the size too."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            described = self.admin.describe_configs([resource])[resource].result(timeout=30)
        except KafkaException as error:
            log.warning("could not read the configuration of %s (%s)", topic, error)
            described = {}
        limits = limits_from_config({name: entry.value for name, entry in described.items()})
        producer_max = int(self.config.producer_config.get("message.max.bytes", PRODUCER_MAX_BYTES))
        if producer_max < limits.max_message_bytes:
            limits = dataclasses.replace(limits, max_message_bytes=producer_max)
        log.info("output limits of %s: %s", topic, limits)
        return limits

    def _owned(self, topic: str) -> list[int]:
        return [p for p in range(self.partitions[topic]) if p % self.replicas == self.ordinal]

    def _assignment(self, consumer: Consumer) -> list[TopicPartition]:
        """Where to start each owned partition.

        A stateful stage starts at the offsets stored with its state, else those its changelog
        restores. A stateless stage has no state to keep consistent: it starts at the later of
        its local offset and the group's committed one, because another pod may have gone on
        with the partition since this one last had it (a scale-out and back). The group's
        offsets also start a stateful stage whose state identity is new (an upgrade that
        starts with empty state where the query left off). Anything else: the earliest."""
        for executor in self.stage_executors:
            if executor.is_stateful:
                self._restore(executor)
        asked = [
            TopicPartition(topic, partition)
            for topic, executor in self.executors.items()
            for partition in self._owned(topic)
            if not executor.is_stateful or (topic, partition) not in self.positions
        ]
        if asked:
            committed_offsets = _retrying(
                lambda: consumer.committed(asked, timeout=10), "committed offsets"
            )
            for committed in committed_offsets:
                slot = (committed.topic, committed.partition)
                if committed.offset > self.positions.get(slot, -1):
                    self.positions[slot] = committed.offset
        # Offsets and de-duplication entries of partitions another pod owns now are stale:
        # never commit them again.
        self.positions = {
            (topic, partition): offset
            for (topic, partition), offset in self.positions.items()
            if topic in self.partitions and partition in self._owned(topic)
        }
        for executor in self.stage_executors:
            executor.retain_partitions(set(self._owned(executor.input_topic)))
        assigned = []
        for topic, executor in self.executors.items():
            for partition in self._owned(topic):
                offset = self.positions.get((topic, partition), OFFSET_BEGINNING)
                assigned.append(TopicPartition(topic, partition, offset))
                executor.mark_seen({partition: time.time() * 1000})
                if isinstance(executor, JoinStageExecutor):
                    self._assign_port(consumer, executor, topic, partition, offset)
        return assigned

    def _assign_port(
        self,
        consumer: Consumer,
        executor: JoinStageExecutor,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Where a join port's partition starts, and where it ends now: a table port is read
        to that end offset before any stream record of its partition is joined (later
        updates are taken in event-time order)."""
        low, high = _retrying(
            lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10),
            f"{topic} offsets",
        )
        start = low if offset < 0 else offset
        executor.assigned(topic, partition, start, high)
        if start < high and not executor.stream_ports[executor.port_of[topic]]:
            log.info("bootstrapping table %s[%d]: offsets %d to %d", topic, partition, start, high)

    def _caught_up(self, topic: str, partition: int, next_offset: int | None) -> bool | None:
        """Whether a join port's partition has nothing more to read now, from the consumer's
        last fetch: True, False (more records are there), None (not known yet)."""
        assert self.consumer is not None
        try:
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
        except KafkaException:
            return None
        if high < 0 or next_offset is None:
            return None
        return next_offset >= high

    def _restore(self, executor: Executor) -> None:
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
            for partition in self._owned(topic):
                slot = TopicPartition(changelog, partition)
                ends[partition] = _retrying(
                    lambda slot=slot: reader.get_watermark_offsets(slot, timeout=10),  # type: ignore[misc]
                    f"{changelog} offsets",
                )
                low, high = ends[partition]
                local = self.positions.get((topic, partition))
                if local is None or high <= low:
                    continue
                last = _last_record(reader, changelog, partition, high)
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
                    self._drop_partition(executor, partition)
            wanted = [p for p in self._owned(topic) if (topic, p) not in self.positions]
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
                self.positions.update(offsets)
                log.info(
                    "restored %s partition %d from %s (%d records) at offset %d",
                    executor.store, partition, changelog, len(records), restored.offset,
                )  # fmt: skip
        finally:
            reader.close()
        executor.restored()

    def _drop_partition(self, executor: Executor, partition: int) -> None:
        """Delete one partition's local state, de-duplication entries and stored offsets."""
        dedup = {key: None for key in executor.dedup_keys(partition)}
        slots = [(topic, partition) for topic in executor.input_topics]
        self.backend.commit(
            {**executor.drop_writes(partition), DEDUP_STORE: dedup},
            dict.fromkeys(slots),
        )
        for slot in slots:
            self.positions.pop(slot, None)

    def _clients(self) -> tuple[Consumer, Producer]:
        consumer = Consumer(
            {
                **self.kafka,
                "group.id": f"streamhouse-{self.query_id}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.queue.backoff.ms": 10,
                "queued.min.messages": 20_000,
                "statistics.interval.ms": 5_000,
                "isolation.level": "read_committed",
                **self.config.consumer_config,
            }
        )
        producer = Producer(
            {
                **self.kafka,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
                "compression.type": "lz4",
                "delivery.report.only.error": True,  # no Python callback per record
                "partitioner": self._partitioner(),
                **self.config.producer_config,
            }
        )
        return consumer, producer

    def _partitioner(self) -> str:
        """Kafka's Java partitioner (murmur2), so a key lands where Java clients, Kafka Streams
        and ksqlDB put it; recorded with the state. State written before that was the default
        (offsets stored, no partitioner recorded) keeps librdkafka's former default: moving a
        key's records to another partition under running state would split its aggregate
        between two partitions (and leave a TABLE output two live values for it)."""
        stored = self.backend.metadata(PARTITIONER)
        if stored:
            return stored.decode()
        if self.positions:
            log.warning(
                "the state in %s was written before outputs used Kafka's Java partitioner: "
                "keeping librdkafka's consistent_random for it (a reset upgrade moves to murmur2)",
                self.config.data_dir,
            )
            chosen = LEGACY_PARTITIONER
        else:
            chosen = JAVA_PARTITIONER
        self.backend.commit({}, {}, {PARTITIONER: chosen.encode()})
        return chosen

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> int:
        server = serve(
            self.metrics,
            self.health,
            self.config.bind_address,
            self.config.metrics_port,
            {"/results": results_route(self._table_reader(), self.ordinal)},
        )
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        try:
            self._check_state_layout()
            problem = self._copartition_problem()
            if problem:
                raise QueryFailed(problem)
            self.consumer, self.producer = self._clients()
            for executor in self.stage_executors:
                if isinstance(executor, JoinStageExecutor):
                    executor.caught_up = self._caught_up
            self.sink = ProducerSink(self.producer)
            assignment = self._assignment(self.consumer)
            self.consumer.assign(assignment)
            self.backend.commit({}, {}, {"plan": self.fingerprint.encode()})
            self.health.ready = True
            log.info(
                "query %s pod %d/%d owns %d partitions; checkpoint every %d ms",
                self.query_id,
                self.ordinal,
                self.replicas,
                len(assignment),
                self.config.checkpoint_interval_ms,
            )
            _tune_gc()
            self._loop()
            return 0
        except QueryFailed as failure:
            log.error("query failed: %s", failure)
            self.health.alive = True  # stay up (no crash loop) but not ready
            self.health.ready = False
            self.health.failure = str(failure)
            while not self.stopping:
                time.sleep(0.5)
            return 1
        finally:
            server.shutdown()  # first: state reads must end before the store closes
            self._shutdown()

    def _table_reader(self) -> TableReader | None:
        """Reads of the final aggregate's committed rows, if the query has one."""
        for executor in self.stage_executors:
            if (
                isinstance(executor, StageExecutor)
                and isinstance(executor.spec.output, Sink)
                and (executor.window_op is not None or executor.aggregate_op is not None)
            ):
                return TableReader(
                    executor, self.backend, functools.partial(self._owned, executor.input_topic)
                )
        return None

    def _check_state_layout(self) -> None:
        """Refuse state written by a query whose stateful operators differ: reading it would
        give wrong results silently. (The operator never gets here: a state-incompatible
        change gets a new state identity or is refused; this guards every other way.)"""
        stored = (self.backend.metadata(STATE_LAYOUT) or b"").decode()
        if stored and self.state_layout and stored != self.state_layout and self.positions:
            raise QueryFailed(
                f"the state in {self.config.data_dir} was written by a query with other "
                f"stateful operators (state layout {stored}, this query {self.state_layout}); "
                "start it with a new state id or an empty data directory"
            )
        self.backend.commit({}, {}, {STATE_LAYOUT: self.state_layout.encode()})

    def _loop(self) -> None:
        assert self.consumer is not None and self.producer is not None
        consumer, producer = self.consumer, self.producer
        interval = self.config.checkpoint_interval_ms / 1000
        timeout = self.config.poll_timeout_ms / 1000
        next_checkpoint = time.monotonic() + interval
        batch_size = self.config.batch_size
        while not self.stopping:
            messages = consumer.consume(batch_size, timeout)
            if messages:
                started = time.perf_counter()
                self._process(messages)
                self.metrics.batch_duration.observe(time.perf_counter() - started)
                self._observe_latency()
            producer.poll(0)
            if time.monotonic() >= next_checkpoint:
                self.checkpoint()
                next_checkpoint = time.monotonic() + interval
        self.checkpoint(final=True)

    def _observe_latency(self) -> None:
        """One end-to-end latency sample per stage and batch: its newest record."""
        now = time.time()
        for executor in self.stage_executors:
            event_time = executor.last_event_time_ms
            if event_time is not None:
                self.metrics.latency.observe(max(0.0, now - event_time / 1000))
                executor.last_event_time_ms = None

    def _process(self, messages: list[Message]) -> None:
        if len(self.executors) == 1:
            executor = next(iter(self.executors.values()))
            self.sink.begin((executor, messages))
            executor.process(messages, self.sink)
            self.metrics.records_in.labels(executor.input_topic).inc(len(messages))
            return
        by_topic: dict[str | None, list[Message]] = defaultdict(list)
        for message in messages:
            by_topic[message.topic()].append(message)
        # A join stage takes the records of all its ports at once (it orders them itself).
        by_stage: dict[int, list[Message]] = defaultdict(list)
        for topic, batch in by_topic.items():
            stage = self.executors.get(topic or "")
            if stage is not None:
                by_stage[id(stage)].extend(batch)
                self.metrics.records_in.labels(topic).inc(len(batch))
        for stage in self.stage_executors:
            batch = by_stage.get(id(stage), [])
            if batch:
                self.sink.begin((stage, batch))
                stage.process(batch, self.sink)
        self._pace_joins()

    def _pace_joins(self) -> None:
        """Pause fetching the ports of a join whose queues are long (the other port is behind
        in event time, or a table is still bootstrapping); resume them when they drain."""
        assert self.consumer is not None
        for stage in self.stage_executors:
            if not isinstance(stage, JoinStageExecutor):
                continue
            full, light = stage.backlogged()
            pause = [TopicPartition(t, p) for t, p in full - self.paused]
            resume = [TopicPartition(t, p) for t, p in light & self.paused]
            if pause:
                self.consumer.pause(pause)
                self.paused |= full
            if resume:
                self.consumer.resume(resume)
                self.paused -= light

    def checkpoint(self, final: bool = False) -> None:
        """Flush outputs, then commit state and offsets in one batch. The final checkpoint
        commits the group's offsets synchronously: the next owner of a partition starts
        from them."""
        assert self.producer is not None and self.consumer is not None
        started = time.perf_counter()
        now = time.time() * 1000
        for executor in self.stage_executors:
            self.sink.begin((executor, []))  # closed windows belong to no input record
            executor.advance(self.sink, now)
        changes: dict[str, dict[bytes, bytes | None]] = {}
        stage_writes = []
        for executor in self.stage_executors:
            writes = executor.changes()
            for store, entries in writes.items():
                changes.setdefault(store, {}).update(entries)
            self.positions.update(executor.offsets())
            if executor.is_stateful:
                stage_writes.append((executor, writes))
        # Outputs first, then the changelog: a changelog that closes a checkpoint always
        # follows every output of it, so restoring from the changelog never skips an output
        # that was not delivered (the restore wins over a local copy that lags behind it).
        self._flush()
        if stage_writes:
            for executor, writes in stage_writes:
                self._write_changelog(executor, writes)
            self._flush()
        offsets = dict(self.positions)
        self.backend.commit(changes, offsets, {WRITER: self.writer})
        if offsets:
            committed = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
            if final:
                self.consumer.commit(offsets=committed, asynchronous=False)
            else:
                self.consumer.commit(offsets=committed, asynchronous=True)
            self._purge_internal(offsets)
        self.metrics.checkpoint_duration.observe(time.perf_counter() - started)
        self._refresh_gauges(offsets)

    def _flush(self) -> None:
        """Wait until every output is delivered. Outputs the broker refused for good become
        dead letters (of their input record where one is known), which are flushed in turn;
        any other failure fails the checkpoint: not committing keeps the input to be
        processed again after a restart (at-least-once)."""
        assert self.producer is not None
        for _ in range(REFUSAL_ROUNDS):
            remaining = self.producer.flush(30)
            report = self.sink.take_report()
            if remaining or report.errors:
                errors = "; ".join(report.errors[:3])
                raise RuntimeError(f"{remaining} outputs undelivered: {errors}")
            if not report.refused:
                return
            for refused in report.refused:
                if refused.origin is None or refused.topic == self.dead_letter_topic:
                    raise RuntimeError(f"dead letter refused by the broker: {refused.reason}")
                if not refused.resent and refused.topic == self.plan.topic:
                    # The broker refuses a whole batch for one record in it (librdkafka does
                    # not split batches): each output is sent again alone, so only the
                    # record that is itself refused becomes a dead letter.
                    self.sink.begin(refused.origin, resent=True)
                    self.sink.send(refused.topic, refused.key, refused.value, refused.timestamp_ms)
                    self.producer.flush(30)
                    continue
                log.warning("output to %s refused by the broker: %s", refused.topic, refused.reason)
                self.sink.begin(None)
                executor, batch = refused.origin
                executor.dead_letter_refused(
                    batch, refused.topic, refused.key, refused.value, refused.reason, self.sink
                )
        raise RuntimeError("outputs kept being refused by the broker")

    def _write_changelog(
        self, executor: Executor, writes: Mapping[str, Mapping[bytes, bytes | None]]
    ) -> None:
        """Send this checkpoint's changes of one stage to its changelog, before the flush."""
        store_writes, dedup_writes = executor.changelog(writes)
        owned = self._owned(executor.input_topic)
        offsets = {p: self.positions.get((executor.input_topic, p), 0) for p in owned}
        others = executor.input_topics[1:]
        port_offsets = {p: [self.positions.get((t, p), 0) for t in others] for p in owned}
        changelog = self.changelogs[executor.store]
        for record in checkpoint_records(
            store_writes, dedup_writes, offsets, self.writer, port_offsets
        ):
            self.sink.send_to(changelog, record.partition, record.key, record.value)

    def _purge_internal(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Delete repartition records every owner has checkpointed past (like Kafka Streams)."""
        now = time.monotonic()
        if now < self.next_purge:
            return
        self.next_purge = now + PURGE_INTERVAL_S
        internal = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in offsets.items()
            if topic in self.internal_topics and offset > 0
        ]
        if internal:
            self.admin.delete_records(internal, request_timeout=10)

    def _refresh_gauges(self, offsets: Mapping[tuple[str, int], int]) -> None:
        assert self.consumer is not None
        entries = 0
        for executor in self.stage_executors:
            entries += executor.state_entries()
            counters = executor.counters
            written = counters.records_out - self.published_out.get(executor.output_topic, 0)
            self.metrics.records_out.labels(executor.output_topic).inc(written)
            self.published_out[executor.output_topic] = counters.records_out
            self.metrics.dead_lettered.inc(counters.dead_lettered)
            self.metrics.skipped.inc(counters.skipped)
            self.metrics.late.inc(counters.late)
            self.metrics.null_keys.inc(counters.null_keys)
            counters.dead_lettered = counters.skipped = counters.late = counters.null_keys = 0
        # The last stage holds the windows, so its watermark is the one that closes them.
        last = self.stage_executors[-1]
        self.metrics.watermark.set(last.watermark(time.time() * 1000))
        self.metrics.state_entries.set(entries)
        self.metrics.state_bytes.set(self.backend.approximate_size_bytes())
        for (topic, partition), position in offsets.items():
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                self.metrics.lag.labels(topic, str(partition)).set(max(0, high - position))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: final checkpoint, then exit", signum)
        self.stopping = True

    def _shutdown(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
        if self.producer is not None:
            self.producer.flush(10)
        self.backend.close()


# Young collections every 50,000 net allocations instead of 700: well above a batch of
# consumed messages and the rows made from them, which reference counting frees anyway.
GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path.

    Records, rows and their values are freed by reference counting; with the default
    thresholds the collector still ran every few hundred records and re-scanned everything
    alive, start-up objects (modules, the parsed and compiled query) included. Those are
    frozen (never scanned again) and young collections made rarer; cycles are still found."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


# Answers a broker gives while a new topic's leaders are elected or a coordinator loads.
_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def _retrying(call: Callable[[], T], what: str, limit_s: float = 60) -> T:
    """Retry a metadata call while the broker answers with a retriable error, as it does
    right after a topic was created or while a group coordinator loads."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            return call()
        except KafkaException as error:
            kafka_error = error.args[0]
            transient = kafka_error.retriable() or kafka_error.code() in _SETTLING
            if time.monotonic() > deadline or not transient:
                raise
            log.debug("%s: %s; retrying", what, error)
            time.sleep(0.5)


def _state_dir(data_dir: Path, state_id: str, reset: bool) -> Path:
    """The RocksDB folder of this state identity. Folders of other identities (the state
    before an upgrade that started afresh) are deleted: a pod runs one identity at a time."""
    state_dir = data_dir / f"state-{state_id}"
    if data_dir.exists():
        for folder in data_dir.glob("state-*"):
            if folder != state_dir or reset:
                log.info("deleting the state folder %s", folder)
                shutil.rmtree(folder)
    return state_dir


def _last_record(
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


def run(config: RuntimeConfig) -> int:
    try:
        runtime = QueryRuntime(config)
    except SystemExit as exit_error:
        print(f"streamhouse run: {exit_error}", file=sys.stderr)
        return 2
    except SqlValidationError as invalid:
        # The same coded errors as `streamhouse validate` and admission, not a traceback.
        for error in invalid.errors:
            print(error.render(config.query_file), file=sys.stderr)
        return 2
    return runtime.run()
