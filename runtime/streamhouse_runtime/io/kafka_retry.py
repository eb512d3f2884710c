"""Metadata calls to the broker, retried while it answers with a transient error (right after
a topic was created, while a group coordinator loads)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

log = logging.getLogger(__name__)
T = TypeVar("T")

# Answers a broker gives while a new topic's leaders are elected or a coordinator loads.
_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def retrying(call: Callable[[], T], what: str, limit_s: float = 60) -> T:
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
