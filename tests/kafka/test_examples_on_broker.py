"""The design's examples through the real broker: the same inputs and expected outputs that
`streamhouse test` checks offline, now through `streamhouse run`, Kafka and RocksDB."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.examples import NAMES, Example
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.query_process import QueryProcess

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("name", NAMES)
def test_example_through_the_broker(
    name: str, kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    example = Example.load(name)
    topics = {name: make_topic(name) for name in example.source_topics}
    output = f"{topics[example.source_topic]}-out"
    sql = example.sql_for(topics, output)
    example.produce(kafka_broker.bootstrap, sql, topics)

    sql_file = tmp_path / "query.sql"
    sql_file.write_text(sql)
    query = QueryProcess(
        sql_file, tmp_path, kafka_broker.bootstrap, uuid.uuid4().hex[:10],
        # What the operator passes on from the manifest's spec.compatibility.
        extra_env={"STREAMHOUSE_COMPATIBILITY": example.compatibility.value},
    )  # fmt: skip
    query.start()
    try:
        messages = read_messages(kafka_broker.bootstrap, output, len(example.expected))
    finally:
        assert query.stop() == 0
    assert example.mismatches(sql, output, messages) == []
