"""What the broker accepts for one topic, checked before a record is produced.

Kafka refuses a record larger than the topic's `max.message.bytes`, a null key on a
compacted topic, and a timestamp further from the broker's clock than
`message.timestamp.after.max.ms` / `before.max.ms` (Kafka 4: one hour ahead, unlimited
behind). Refused after `produce()` the failure would reach us in a delivery report, away from
the record that caused it, so the runtime reads these settings once at start and refuses such
an output as an error of the input record instead (dead-lettered with the reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Bytes a record costs in a batch beyond its key, value and headers (record and batch
# headers, varints, one record per batch at worst), so that a record we let through is never
# one the broker refuses for a few bytes.
RECORD_OVERHEAD = 512
_LONG_MAX = (1 << 63) - 1


class OutputRejected(ValueError):
    """An output record the topic would refuse; an error of the record that produced it."""


@dataclass(frozen=True)
class TopicLimits:
    max_message_bytes: int = 1_048_588  # Kafka's default
    compacted: bool = False
    max_future_ms: int = 3_600_000  # message.timestamp.after.max.ms (Kafka 4 default)
    max_past_ms: int = _LONG_MAX  # message.timestamp.before.max.ms

    def check(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        now_ms: int,
        header_bytes: int = 0,
    ) -> None:
        """Raise OutputRejected when the broker would refuse this record."""
        size = (len(key) if key else 0) + (len(value) if value else 0) + header_bytes
        if size + RECORD_OVERHEAD > self.max_message_bytes:
            raise OutputRejected(
                f"output of {size} bytes is larger than {topic}'s max.message.bytes "
                f"({self.max_message_bytes})"
            )
        if key is None and self.compacted:
            raise OutputRejected(f"a record without a key cannot go to compacted topic {topic}")
        self.check_time(topic, timestamp_ms, now_ms)

    def check_time(self, topic: str, timestamp_ms: int, now_ms: int) -> None:
        if timestamp_ms - now_ms > self.max_future_ms:
            raise OutputRejected(
                f"timestamp {timestamp_ms} is more than {self.max_future_ms} ms ahead of now "
                f"(message.timestamp.after.max.ms of {topic})"
            )
        if now_ms - timestamp_ms > self.max_past_ms:
            raise OutputRejected(
                f"timestamp {timestamp_ms} is more than {self.max_past_ms} ms behind now "
                f"(message.timestamp.before.max.ms of {topic})"
            )


DEFAULT_LIMITS = TopicLimits()


def limits_from_config(config: Mapping[str, str | None]) -> TopicLimits:
    """TopicLimits from a topic's described configuration (`DescribeConfigs`)."""

    def number(name: str, default: int) -> int:
        text = config.get(name)
        try:
            return int(text) if text is not None else default
        except ValueError:
            return default

    policy = config.get("cleanup.policy") or ""
    return TopicLimits(
        max_message_bytes=number("max.message.bytes", DEFAULT_LIMITS.max_message_bytes),
        compacted="compact" in policy,
        max_future_ms=number("message.timestamp.after.max.ms", DEFAULT_LIMITS.max_future_ms),
        max_past_ms=number("message.timestamp.before.max.ms", DEFAULT_LIMITS.max_past_ms),
    )
