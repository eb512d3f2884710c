"""Every example of the design, applied as the StreamQuery manifest a user would apply: the
operator deploys it, the pods run it against the real broker, the output topic holds exactly
the example's expected records, and `kubectl get sq` shows each one RUNNING and keeping up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Queries
from tests.harness.examples import NAMES, Example
from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.operator import OperatorProcess

pytestmark = pytest.mark.e2e


def test_the_design_examples_run_as_streamqueries(
    operator: OperatorProcess,
    queries: Queries,
    kafka_broker: KafkaBroker,
    pod_bootstrap: str,
    make_topic: Callable[..., str],
) -> None:
    runs = []
    for name in NAMES:
        example = Example.load(name)
        topics = {name: make_topic(name) for name in example.source_topics}
        output = f"{topics[example.source_topic]}-out"
        sql = example.sql_for(topics, output)
        example.produce(kafka_broker.bootstrap, sql, topics)
        manifest = example.manifest
        manifest["spec"]["sql"] = sql
        manifest["spec"]["kafka"]["bootstrapServers"] = pod_bootstrap
        queries.apply(manifest)
        runs.append((example, sql, output))

    for example, sql, output in runs:
        name = example.manifest["metadata"]["name"]
        status = queries.wait_running(name, replicas=1)["status"]
        assert status["outputTopic"] == output
        messages = read_messages(kafka_broker.bootstrap, output, len(example.expected), 90)
        assert example.mismatches(sql, output, messages) == [], name
        # Live figures scraped from the pod: everything consumed, nothing dead-lettered.
        queries.wait(
            name,
            lambda body: (
                (body.get("status") or {}).get("lag") == 0
                and (body.get("status") or {}).get("deadLettered") == 0
            ),
            "lag 0 in status",
        )

    table = queries.kubectl("get", "sq")
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "STATE", "PARALLELISM", "READY", "LAG", "INPUT/S", "AGE"]
    assert sorted(row.split()[0] for row in rows) == sorted(
        run[0].manifest["metadata"]["name"] for run in runs
    )
    for row in rows:
        name, state, parallelism, ready, lag = row.split()[:5]
        assert (state, parallelism, ready, lag) == ("RUNNING", "1", "1", "0"), row
