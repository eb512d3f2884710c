"""A mixed stream of good records and more than 10,000 hostile ones (invalid bytes, wrong
types, overflowing numbers, huge and deep values, NULL, negative and future event times,
NULL group keys, oversized outputs) through a filter, a windowed aggregation and a running
aggregate on the real broker. No pod stops, every hostile record is dead-lettered with a
reason or counted, and every result equals a reference computed over the good records."""

from __future__ import annotations

import json
import os
import random
import struct
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.kafka import KafkaBroker, read_messages
from tests.harness.processes import wait_until
from tests.harness.query_process import QueryProcess
from tests.kafka.test_runtime import produce

pytestmark = pytest.mark.kafka

SCALE = 1_000_000_000  # amount * SCALE overflows BIGINT for |amount| > 9.2e9
WINDOW_MS = 300_000
OUTPUT_LIMIT = 50_000  # max.message.bytes of the filter's output topic
SOURCE = """CREATE STREAM ev (id BIGINT, k VARCHAR, amount BIGINT, note VARCHAR, at BIGINT)
  WITH (kafka_topic = '{topic}', value_format = 'JSON', timestamp = 'at');
"""


@dataclass
class Case:
    """One input record and what each query must do with it."""

    id: int
    value: bytes
    k: str | None = None
    amount: int = 0
    at: int = 0
    good_for_aggregates: bool = False  # counted by both aggregations
    good_for_filter: bool = False  # passes the filter and is written
    null_key: bool = False  # counted as a NULL group key by the aggregations
    filtered_out: bool = False  # a good record the filter drops


def _cases(now_ms: int) -> list[Case]:
    rng = random.Random(7)
    kinds = (
        ["good"] * 5_000
        + ["bytes"] * 2_000
        + ["type"] * 2_000
        + ["range"] * 1_000
        + ["overflow"] * 1_000
        + ["deep"] * 500
        + ["null_time"] * 1_500
        + ["future"] * 1_500
        + ["negative"] * 500
        + ["null_key"] * 1_000
        + ["huge"] * 300
    )
    rng.shuffle(kinds)
    base = now_ms - 30 * 60_000  # event times rise 50 ms per record: nothing is late
    cases = []
    for index, kind in enumerate(kinds):
        at = base + index * 50
        k = f"k{rng.randrange(20)}"
        amount = rng.randrange(1, 1_000)
        fields: dict[str, object] = {"id": index, "k": k, "amount": amount, "note": "", "at": at}
        case = Case(index, b"", k, amount, at)
        if kind == "good":
            case.good_for_aggregates = True
            case.good_for_filter = amount > 10
            case.filtered_out = amount <= 10
        elif kind == "bytes":
            case.value = rng.choice([os.urandom(rng.randrange(1, 40)), b'{"id": 1, "k": "x"'])
        elif kind == "type":
            fields["amount"] = rng.choice(["abc", [1, 2], {"n": 1}])
        elif kind == "range":
            fields["amount"] = 2**64 + rng.randrange(100)  # outside BIGINT
        elif kind == "overflow":
            fields["amount"] = 2**40 + rng.randrange(100)  # amount * SCALE overflows
        elif kind == "deep":
            case.value = b'{"id": 1, "note": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
        elif kind == "null_time":
            fields["at"] = None
        elif kind == "future":
            fields["at"] = now_ms + 3 * 3_600_000
        elif kind == "negative":
            fields["at"] = -rng.randrange(1, 10**6)
        elif kind == "null_key":
            fields["k"] = None
            case.k = None
            case.null_key = True
            case.good_for_filter = amount > 10
            case.filtered_out = amount <= 10
        elif kind == "huge":  # too big for the filter's output, fine for the aggregations
            fields["amount"] = case.amount = 500
            fields["note"] = os.urandom(OUTPUT_LIMIT // 2 + 1_000).hex()
            case.good_for_aggregates = True
        if not case.value:
            case.value = json.dumps(fields).encode()
        cases.append(case)
    return cases


def _start(broker: KafkaBroker, directory: Path, sql: str, dlq: str) -> QueryProcess:
    directory.mkdir(parents=True)
    sql_file = directory / "query.sql"
    sql_file.write_text(sql)
    return QueryProcess(
        sql_file,
        directory,
        broker.bootstrap,
        uuid.uuid4().hex[:10],
        extra_env={"STREAMHOUSE_DEAD_LETTER_TOPIC": dlq, "STREAMHOUSE_LATENESS_MS": "600000"},
    ).start()


def _latest(bootstrap: str, topic: str, expect: int) -> dict[bytes, dict[str, object]]:
    latest: dict[bytes, dict[str, object]] = {}
    for message in read_messages(bootstrap, topic, expect, timeout_s=120):
        key = message.key()
        assert key is not None
        latest[key] = json.loads(message.value() or b"null")
    return latest


def test_hostile_records_never_stop_a_query_and_results_match_the_good_ones(
    kafka_broker: KafkaBroker, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    source = make_topic("fuzz", partitions=2)
    filtered = make_topic("fuzz-filtered", **{"max.message.bytes": str(OUTPUT_LIMIT)})
    windowed, totals = f"{source}-windowed", f"{source}-totals"
    sql = SOURCE.format(topic=source)
    queries = {
        "filter": sql + f"CREATE STREAM f WITH (kafka_topic = '{filtered}') AS SELECT id, k, "
        f"amount * {SCALE} AS scaled, note FROM ev WHERE amount > 10;",
        "window": sql
        + f"CREATE TABLE w WITH (kafka_topic = '{windowed}') AS SELECT k, COUNT(*) AS n, "
        f"SUM(amount * {SCALE}) AS scaled FROM ev WINDOW TUMBLING (SIZE 5 MINUTES) "
        "GROUP BY k EMIT CHANGES;",
        "running": sql
        + f"CREATE TABLE t WITH (kafka_topic = '{totals}') AS SELECT k, COUNT(*) AS n, "
        f"SUM(amount * {SCALE}) AS scaled FROM ev GROUP BY k;",
    }
    cases = _cases(int(time.time() * 1000))
    hostile = sum(not c.good_for_aggregates and not c.null_key for c in cases)
    assert hostile + sum(c.null_key for c in cases) >= 10_000
    produce(
        kafka_broker.bootstrap,
        source,
        [c.value for c in cases],
        [str(c.id).encode() for c in cases],
    )
    processes = {
        name: _start(kafka_broker, tmp_path / name, query, f"{source}-{name}-dlq")
        for name, query in queries.items()
    }
    try:
        expected_dead = {
            "filter": sum(
                not (c.good_for_filter or c.filtered_out) for c in cases
            ),  # everything else, the oversized outputs included
            "window": hostile,
            "running": hostile,
        }

        def reached(process: QueryProcess, metric: str, expected: int) -> Callable[[], bool]:
            return lambda: process.metric(metric) >= expected

        for name, process in processes.items():
            metric = "streamhouse_dead_letter_records_total"
            wait_until(reached(process, metric, expected_dead[name]), 180, f"{name} dead letters")
        for name in ("window", "running"):
            nulls = sum(c.null_key for c in cases)
            metric = "streamhouse_null_key_records_total"
            wait_until(reached(processes[name], metric, nulls), 60, f"{name} null keys")
        filter_out = read_messages(
            kafka_broker.bootstrap, filtered, sum(c.good_for_filter for c in cases), 120
        )
        window_latest = _latest(
            kafka_broker.bootstrap, windowed, sum(c.good_for_aggregates for c in cases)
        )
        totals_latest = _latest(
            kafka_broker.bootstrap, totals, sum(c.good_for_aggregates for c in cases)
        )
        time.sleep(1)
        counts = {
            name: (
                p.metric("streamhouse_dead_letter_records_total"),
                p.metric("streamhouse_null_key_records_total"),
            )
            for name, p in processes.items()
        }
        for name, process in processes.items():
            assert process.process is not None and process.process.poll() is None, name
    finally:
        for process in processes.values():
            process.stop()

    # Every hostile record was dead-lettered (each with a reason) or counted, exactly once.
    assert counts["filter"] == (expected_dead["filter"], 0)
    assert counts["window"] == (hostile, sum(c.null_key for c in cases))
    assert counts["running"] == (hostile, sum(c.null_key for c in cases))
    for name in queries:
        # The metrics above say there are no more than these.
        dlq = f"{source}-{name}-dlq"
        dead = read_messages(kafka_broker.bootstrap, dlq, expected_dead[name], 90)
        assert len(dead) == expected_dead[name], name
        reasons = [dict(m.headers() or [])["streamhouse.error.reason"] for m in dead]
        assert all(reason for reason in reasons)
        if name == "filter":
            assert sum(b"max.message.bytes" in r for r in reasons) == 300
        assert sum(b"integer overflow" in r for r in reasons) == 1_000
        assert sum(b"ahead of now" in r for r in reasons) == 1_500
        assert sum(b"event time at is NULL" in r for r in reasons) == 1_500

    # The results are those of the good records alone.
    assert sorted(json.loads(m.value() or b"")["id"] for m in filter_out) == sorted(
        c.id for c in cases if c.good_for_filter
    )
    reference_window: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    reference_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in cases:
        if c.good_for_aggregates:
            assert c.k is not None
            window = reference_window[(c.k, c.at - c.at % WINDOW_MS)]
            window[0] += 1
            window[1] += c.amount * SCALE
            total = reference_totals[c.k]
            total[0] += 1
            total[1] += c.amount * SCALE
    assert {
        (str(row["k"]), struct.unpack(">q", key[-8:])[0]): [row["n"], row["scaled"]]
        for key, row in window_latest.items()
    } == dict(reference_window)
    assert {str(row["k"]): [row["n"], row["scaled"]] for row in totals_latest.values()} == dict(
        reference_totals
    )
