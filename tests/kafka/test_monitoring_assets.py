"""Every metric the Grafana dashboard and the alert rules read from a query pod exists in a
running query's /metrics (a real `streamhouse run` on the real broker)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.harness.kafka import KafkaBroker
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.monitoring_assets import (
    KUBE_STATE_METRICS,
    alert_rules,
    dashboard_expressions,
    exposed_names,
    metric_names,
)

pytestmark = pytest.mark.kafka

SQL = """CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DOUBLE,
  created_at BIGINT) WITH (kafka_topic = '{source}', value_format = 'JSON',
  timestamp = 'created_at');
CREATE TABLE counts WITH (kafka_topic = '{output}') AS SELECT customer_id, COUNT(*) AS n
  FROM orders WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY customer_id;
"""


@pytest.fixture(scope="module")
def pod_metrics(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> str:
    source = kafka_broker.create_topic(f"monitoring-orders-{uuid.uuid4().hex[:8]}", 2, {})
    output = source + "-out"
    folder: Path = tmp_path_factory.mktemp("monitoring")
    sql_file = folder / "query.sql"
    sql_file.write_text(SQL.format(source=source, output=output))
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(200):
        value = {"order_id": i, "customer_id": f"c{i % 5}", "amount": 1.5, "created_at": i * 50}
        producer.produce(source, json.dumps(value).encode(), f"c{i % 5}".encode(), partition=i % 2)
    assert producer.flush(30) == 0
    query = QueryProcess(sql_file, folder, kafka_broker.bootstrap, "monitoring").start()
    try:
        wait_until(
            lambda: (
                query.metric("streamhouse_records_out_total") > 0
                and query.metric("streamhouse_checkpoint_duration_seconds_count") > 0
            ),
            60,
            "outputs and a checkpoint",
            query.process,
            query.log_file,
        )
        return query.metrics()
    finally:
        query.stop()


def test_every_metric_the_dashboard_reads_is_exported(pod_metrics: str) -> None:
    exposed = exposed_names(pod_metrics)
    wanted = set().union(*(metric_names(e) for e in dashboard_expressions())) - KUBE_STATE_METRICS
    assert len(wanted) >= 10
    assert wanted - exposed == set()
    # Lag per partition: one series per input partition.
    lag = [
        line for line in pod_metrics.splitlines() if line.startswith("streamhouse_consumer_lag{")
    ]
    assert {line.split('partition="')[1].split('"')[0] for line in lag} == {"0", "1"}


def test_every_query_metric_the_alert_rules_read_is_exported(pod_metrics: str) -> None:
    exposed = exposed_names(pod_metrics)
    query_pod_names = {
        name
        for rule in alert_rules()
        for name in metric_names(rule["expr"])
        if not name.startswith("streamhouse_operator_")
    } - KUBE_STATE_METRICS
    assert {"streamhouse_consumer_lag", "streamhouse_watermark_ms"} <= query_pod_names
    assert query_pod_names - exposed == set()


def test_a_misspelt_metric_would_be_caught() -> None:
    assert metric_names('rate(streamhouse_records_inn_total{x="y"}[5m])') == {
        "streamhouse_records_inn_total"
    }
    assert "streamhouse_records_inn_total" not in exposed_names("streamhouse_records_in_total 1\n")
