"""A pod that lost its volume rebuilds state and offsets from the changelog topics instead of
reprocessing the whole input, and the aggregates stay exact."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import order, produce, read_all, totals_sql

pytestmark = pytest.mark.kafka


def test_an_empty_volume_is_rebuilt_from_the_changelog(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("orders", partitions=2)
    out = f"totals_{source}"
    sql_file = tmp_path / "query.sql"
    sql_file.write_text(totals_sql(source, out))
    query_id = uuid.uuid4().hex[:10]
    produce(kafka_broker.bootstrap, source, [order(i, "2.50", f"c{i % 3}") for i in range(300)])
    first = QueryProcess(sql_file, tmp_path, kafka_broker.bootstrap, query_id).start()
    read_all(kafka_broker.bootstrap, out, 300)
    assert first.stop() == 0

    shutil.rmtree(tmp_path / "pod-0")  # the volume is gone
    produce(kafka_broker.bootstrap, source, [order(i, "1", f"c{i % 3}") for i in range(300, 330)])
    second = QueryProcess(sql_file, tmp_path, kafka_broker.bootstrap, query_id).start()
    try:
        records = read_all(kafka_broker.bootstrap, out, 330)
        wait_until(
            lambda: second.metric(f'streamhouse_records_in_total{{topic="{source}"') >= 30,
            30,
            "new input consumed",
        )
        consumed = second.metric(f'streamhouse_records_in_total{{topic="{source}"')
    finally:
        second.stop()
    assert consumed == 30, "the restored pod should resume at its offsets, not reprocess"
    latest = {value["customer_id"]: value for _, value, _ in records}
    assert {c: (v["n"], v["total"]) for c, v in latest.items()} == {
        f"c{n}": (110, Decimal("2.50") * 100 + 10) for n in range(3)
    }
    log = (tmp_path / "runtime-0.log").read_text()
    assert "restored stage-1 partition 0" in log and "restored stage-1 partition 1" in log
