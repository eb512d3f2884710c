"""The RecordSink of a pod: produce straight into librdkafka's queue, and bring outputs the
broker refused back to the batch of input records that produced them.

Delivery reports arrive only for failures (`delivery.report.only.error`), on the producer's
poll/flush. Every `produce` of one consumed batch carries the same callback, bound to that
batch, so a failed output leads back to the records that may have produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

# exec.pipeline.Headers, spelled out here: exec imports io, so io never imports exec.
Headers = list[tuple[str, str | bytes | None]]

_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner picks

# Delivery errors that are about the record itself: sending it again would fail again, so
# it becomes a dead letter. Anything else (timeouts, a broker gone, fencing) fails the
# checkpoint instead, and the input is processed again after a restart.
RECORD_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.POLICY_VIOLATION,
    }
)


@dataclass
class Refused:
    """One output the broker refused for good, and the batch it came from."""

    origin: Any
    topic: str
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    reason: str
    resent: bool  # already sent again on its own, in a batch of one


@dataclass
class DeliveryReport:
    refused: list[Refused] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failures that are not the record's


class ProducerSink:
    """Counting and latency sampling happen per batch in the main loop, not here: `send` is
    called once per output record. `produce` takes its arguments positionally here (topic,
    value, key, partition, callback, on_delivery, timestamp, headers; the callback is the
    fifth: the sixth is read only when the fifth is None): keyword arguments cost
    confluent-kafka a third of the call."""

    def __init__(self, producer: Producer) -> None:
        self.produce = producer.produce
        self.poll = producer.poll
        self.report = DeliveryReport()
        self._callback: Callable[[Any, Any], None] | None = None

        def internal(error: Any, message: Any) -> None:
            if error is not None:
                self.report.errors.append(f"{error.name()} on {message.topic()}")

        self._internal = internal  # changelogs: any failure fails the checkpoint

    def begin(self, origin: Any, resent: bool = False) -> None:
        """Outputs sent from now on come from `origin` (a stage and its consumed batch)."""

        def delivered(error: Any, message: Any) -> None:
            if error is None:
                return
            if error.code() in RECORD_ERRORS:
                refused = Refused(
                    origin,
                    message.topic(),
                    message.key(),
                    message.value(),
                    message.timestamp()[1],
                    error.name(),
                    resent,
                )
                self.report.refused.append(refused)
            else:
                self.report.errors.append(f"{error.name()} on {message.topic()}")

        self._callback = delivered

    def take_report(self) -> DeliveryReport:
        report, self.report = self.report, DeliveryReport()
        return report

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        try:
            self.produce(
                topic, value, key, _ANY_PARTITION, self._callback, None, timestamp_ms, headers
            )
        except BufferError:
            self.poll(0.05)  # the local queue is full: let deliveries drain, then retry
            self.send(topic, key, value, timestamp_ms, headers)
        except KafkaException as error:
            # produce() refused the record itself (too large for the producer): the
            # record's error, raised into the stage's per-record handling.
            raise ValueError(f"output refused by the producer: {error.args[0].name()}") from None

    def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        """Produce to an explicit partition (changelogs follow their input's partitioning)."""
        try:
            self.produce(topic, value, key, partition, self._internal)
        except BufferError:
            self.poll(0.05)
            self.send_to(topic, partition, key, value)
