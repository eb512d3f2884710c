"""The API's live tail of an output topic on the real broker: the newest N records across
partitions, decoded, bounded, and nothing committed for the throwaway consumer."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streamhouse_operator.api.tail import MAX_RECORDS, TailUnavailable, tail
from tests.harness.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def test_tail_returns_the_newest_records_of_every_partition(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("out", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(300):
        value = json.dumps({"i": i}).encode() if i % 50 else b"\xff not json"
        producer.produce(topic, value, f"k{i}".encode(), partition=i % 3, timestamp=1_000 + i)
    assert producer.flush(30) == 0
    page = tail(kafka_broker.bootstrap, topic, 10)
    assert [r.timestamp for r in page.records] == list(range(1_290, 1_300))
    assert [r.value for r in page.records] == [{"i": i} for i in range(290, 300)]
    assert {r.partition for r in page.records} == {0, 1, 2}
    assert page.records[-1].key == "k299"
    assert len(tail(kafka_broker.bootstrap, topic, 10_000).records) == MAX_RECORDS
    undecodable = [r for r in tail(kafka_broker.bootstrap, topic, MAX_RECORDS).records
                   if isinstance(r.value, str)]  # fmt: skip
    assert undecodable and all(r.timestamp % 50 == 0 for r in undecodable if r.timestamp)
    assert tail(kafka_broker.bootstrap, make_topic("empty"), 5).records == []
    groups = kafka_broker.admin().list_consumer_groups().result(timeout=10).valid
    assert "streamhouse-api-tail" not in {g.group_id for g in groups}
    with pytest.raises(TailUnavailable):
        tail(kafka_broker.bootstrap, "no-such-topic-" + topic, 5)
