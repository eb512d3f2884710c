"""`streamhouse run`: the process every query pod runs, the driver of its stage executors over
Kafka (topic administration is `topics.py`, changelog restore `restore.py`).

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
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from streamhouse_runtime.config import RuntimeConfig
from streamhouse_runtime.endpoints import HealthState, results_route, serve
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
)
from streamhouse_runtime.io.kafka_retry import retrying
from streamhouse_runtime.io.kafka_sink import ProducerSink
from streamhouse_runtime.io.registry import SchemaRegistry
from streamhouse_runtime.metrics import RuntimeMetrics
from streamhouse_runtime.plan.nodes import Repartition, Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.upgrade import state_fingerprint
from streamhouse_runtime.program import load_single_query, load_udfs
from streamhouse_runtime.restore import ChangelogRestore
from streamhouse_runtime.sql.compatibility import parse_compatibility
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.state.backend import RocksdbStateBackend
from streamhouse_runtime.state.changelog import (
    checkpoint_records,
)
from streamhouse_runtime.topics import TopicAdmin, copartition_problem

log = logging.getLogger(__name__)
Executor = StageExecutor | JoinStageExecutor

PURGE_INTERVAL_S = 30.0
WRITER = "writer"  # metadata: id of the process that wrote the local checkpoint
STATE_LAYOUT = "state-layout"  # metadata: plan.upgrade.state_fingerprint of the state's query
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
        topics = TopicAdmin(self.admin, self.state_id, config.producer_config)
        table_sink = bool(self.statement.sink and self.statement.sink.kind.value == "TABLE")
        self.partitions = topics.prepare(self.stages, plan, table_sink, self.dead_letter_topic)
        settings.output_limits = topics.limits(self.plan.topic)
        settings.dead_letter_limits = topics.limits(self.dead_letter_topic)
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
        restore = ChangelogRestore(
            self.kafka, self.query_id, self.backend, self.changelogs, self._owned,
            self.previous_writer,
        )  # fmt: skip
        for executor in self.stage_executors:
            if executor.is_stateful:
                restore.restore(executor, self.positions)
        asked = [
            TopicPartition(topic, partition)
            for topic, executor in self.executors.items()
            for partition in self._owned(topic)
            if not executor.is_stateful or (topic, partition) not in self.positions
        ]
        if asked:
            committed_offsets = retrying(
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
        low, high = retrying(
            lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10),
            f"{topic} offsets",
        )
        start = low if offset < 0 else offset
        executor.assigned(topic, partition, start, high)
        if start < high and not executor.stream_ports[executor.port_of[topic]]:
            log.info("bootstrapping table %s[%d]: offsets %d to %d", topic, partition, start, high)

    def _caught_up(self, topic: str, partition: int, next_offset: int | None) -> bool | None:
        """Whether a join port's partition has nothing more to read now (asked when its queue
        is empty), from the consumer's last fetch: True, False (more records are there), None
        (not known yet). The consumer's position counts records the application never sees
        (transaction markers), so a partition whose last offset is a marker is caught up."""
        assert self.consumer is not None
        slot = TopicPartition(topic, partition)
        try:
            _, high = self.consumer.get_watermark_offsets(slot, cached=True)
            (consumed,) = self.consumer.position([slot])
        except KafkaException:
            return None
        reached = max(consumed.offset, next_offset if next_offset is not None else -1)
        if high < 0 or reached < 0:
            return None
        return reached >= high

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
            problem = copartition_problem(self.stages, self.partitions, self.state_id)
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
