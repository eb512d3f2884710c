"""Topic administration of a query at start: the partition counts of its inputs, the internal,
output and dead-letter topics it needs (created when missing), what each output topic accepts,
and whether a join's inputs can meet."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from streamhouse_runtime.exec.topology import (
    ExecSpec,
    JoinStageSpec,
    internal_topic,
    repartition_counts,
    source_topics,
    stage_ports,
)
from streamhouse_runtime.io.limits import TopicLimits, limits_from_config
from streamhouse_runtime.plan.nodes import Repartition, Sink, Source

log = logging.getLogger(__name__)
PRODUCER_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes


class TopicAdmin:
    def __init__(
        self, admin: AdminClient, state_id: str, producer_config: Mapping[str, str]
    ) -> None:
        self.admin = admin
        self.state_id = state_id
        self.producer_config = producer_config

    def prepare(
        self, stages: Sequence[ExecSpec], plan: Sink, table_sink: bool, dead_letter_topic: str
    ) -> dict[str, int]:
        """Partition counts of every input; creates missing output and internal topics.

        Internal topics get the partition count of the query's first source topic, except a
        repartition topic that a join reads next to a source topic: it gets that topic's
        count (the two sides of a join must be co-partitioned)."""
        admin = self.admin
        metadata = admin.list_topics(timeout=30)
        sources = source_topics(stages)
        counts: dict[str, int] = {}
        for topic in sources:
            if topic not in metadata.topics or metadata.topics[topic].error:
                raise SystemExit(f"source topic {topic!r} does not exist")
            counts[topic] = len(metadata.topics[topic].partitions)
        partitions = counts[sources[0]]
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        repartitioned = repartition_counts(stages, counts)
        for spec in stages:
            if isinstance(spec.output, Repartition):
                name = internal_topic(self.state_id, spec.output.topic_suffix)
                # Records keep their event time as timestamp, which may be old: only our own
                # purge after each checkpoint may delete them, never time retention.
                count = repartitioned.get(spec.output.topic_suffix, partitions)
                wanted[name] = (count, {"retention.ms": "-1"})
        for spec in stages:
            if spec.stateful is not None or not spec.is_source_stage:
                changelog = internal_topic(self.state_id, f"stage-{spec.index}-changelog")
                first = stage_ports(spec)[0].reads
                count = (
                    counts[first.topic]
                    if isinstance(first, Source)
                    else wanted[internal_topic(self.state_id, first.topic_suffix)][0]
                )
                wanted[changelog] = (count, {"cleanup.policy": "compact"})
        output_partitions = plan.partitions or partitions
        compacted = {"cleanup.policy": "compact"} if table_sink else {}
        wanted[plan.topic] = (output_partitions, compacted)
        wanted[dead_letter_topic] = (1, {})
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

    def limits(self, topic: str) -> TopicLimits:
        """What `topic` accepts (size, keys, timestamps), read once at start; the producer's
        own `message.max.bytes` caps the size too."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            described = self.admin.describe_configs([resource])[resource].result(timeout=30)
        except KafkaException as error:
            log.warning("could not read the configuration of %s (%s)", topic, error)
            described = {}
        limits = limits_from_config({name: entry.value for name, entry in described.items()})
        producer_max = int(self.producer_config.get("message.max.bytes", PRODUCER_MAX_BYTES))
        if producer_max < limits.max_message_bytes:
            limits = dataclasses.replace(limits, max_message_bytes=producer_max)
        log.info("output limits of %s: %s", topic, limits)
        return limits


def copartition_problem(
    stages: Sequence[ExecSpec], partitions: Mapping[str, int], state_id: str
) -> str:
    """Why the inputs of a join cannot meet, from the partition counts on the broker
    (the declared counts are checked at validation; these are only known here)."""
    for spec in stages:
        if not isinstance(spec, JoinStageSpec):
            continue
        topics = [
            p.reads.topic
            if isinstance(p.reads, Source)
            else internal_topic(state_id, p.reads.topic_suffix)
            for p in spec.ports
        ]
        found = [partitions[t] for t in topics]
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
