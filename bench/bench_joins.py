"""End-to-end throughput of joins in `streamhouse run` (and Quix Streams) on the local broker.

- stream-table: N orders keyed by customer joined with a table of `--table-rows` customers
  (1,000,000 by default); the table is loaded first and bootstrapped by the query before it
  joins, and only the stream is timed (from the first committed order offset to the last).
- stream-table-rekeyed: the same orders without a key, so the join re-keys them through an
  internal topic first (two stages).
- stream-stream: N/2 clicks and N/2 purchases keyed by user, joined WITHIN 5 seconds; both
  inputs are timed (events/s counts both).

    .venv/bin/python -m bench.bench_joins --records 500000 --runs 3 [--quix]

`--quix` runs the closest Quix Streams program on the same data (bench/quix_joins.py):
`join_asof` for the stream-table join and `join_interval` for the stream-stream join.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]
from tests.harness.kafka import KafkaBroker
from tests.harness.processes import start_process, stop_process
from tests.harness.query_process import QueryProcess

from bench.bench_runtime import BENCH, quix_python

BASE = 1_700_000_000_000
CUSTOMERS_DDL = (
    "CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR, tier VARCHAR) "
    "WITH (kafka_topic = '{customers}', value_format = 'JSON');\n"
)
ORDERS_DDL = (
    "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR{key}, amount DOUBLE, "
    "created_at TIMESTAMP) WITH (kafka_topic = '{orders}', value_format = 'JSON', "
    "timestamp = 'created_at');\n"
)
ENRICH = (
    "CREATE STREAM enriched WITH (kafka_topic = '{out}') AS SELECT o.order_id, o.amount, "
    "c.name AS customer_name, c.tier FROM orders o LEFT JOIN customers c "
    "ON o.customer_id = c.customer_id;"
)
STREAMS_DDL = (
    "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, at TIMESTAMP) "
    "WITH (kafka_topic = '{clicks}', value_format = 'JSON', timestamp = 'at');\n"
    "CREATE STREAM buys (user_id VARCHAR KEY, item VARCHAR, at TIMESTAMP) "
    "WITH (kafka_topic = '{buys}', value_format = 'JSON', timestamp = 'at');\n"
)
CORRELATE = (
    "CREATE STREAM converted WITH (kafka_topic = '{out}') AS SELECT c.user_id AS user_id, "
    "c.page, b.item FROM clicks c JOIN buys b WITHIN 5 SECONDS GRACE PERIOD 1 SECOND "
    "ON c.user_id = b.user_id;"
)
CASES = ("stream-table", "stream-table-rekeyed", "stream-stream")


def _producer(bootstrap: str) -> Producer:
    return Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10_000,
         "queue.buffering.max.messages": 2_000_000, "compression.type": "lz4",
         "partitioner": "murmur2_random"}
    )  # fmt: skip


def _send(producer: Producer, topic: str, key: bytes | None, value: bytes, at: int) -> None:
    while True:
        try:
            producer.produce(topic, value, key, timestamp=at)
            return
        except BufferError:
            producer.poll(0.05)


def load_customers(bootstrap: str, topic: str, rows: int) -> None:
    producer = _producer(bootstrap)
    for n in range(rows):
        tier = b"gold" if n % 7 == 0 else b"silver"
        _send(producer, topic, b"c-%d" % n, b'{"name":"customer %d","tier":"%s"}' % (n, tier), BASE)
    producer.flush(300)


def load_orders(bootstrap: str, topic: str, records: int, customers: int) -> None:
    producer = _producer(bootstrap)
    for n in range(records):
        customer = (n * 7919) % customers
        value = b'{"order_id":%d,"customer_id":"c-%d","amount":%d.5,"created_at":%d}' % (
            n, customer, n % 1000, BASE + 1 + n,
        )  # fmt: skip
        _send(producer, topic, b"c-%d" % customer, value, BASE + 1 + n)
    producer.flush(300)


def load_streams(bootstrap: str, clicks: str, buys: str, records: int) -> None:
    producer = _producer(bootstrap)
    for n in range(records // 2):
        user = b"u-%d" % (n % 50_000)
        at = BASE + n * 2
        _send(producer, clicks, user, b'{"page":"p%d","at":%d}' % (n, at), at)
        _send(producer, buys, user, b'{"item":"i%d","at":%d}' % (n, at + 1), at + 1)
    producer.flush(300)


def committed(admin: AdminClient, group: str, topics: list[str]) -> int:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, 0) for t in topics])
    result = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    return sum(max(0, tp.offset) for tp in result.topic_partitions)


def wait_for_commits(
    admin: AdminClient,
    group: str,
    topics: list[str],
    records: int,
    limit_s: float,
    process: subprocess.Popen[bytes] | None = None,
) -> float:
    """Seconds from the first committed progress on `topics` to every input offset."""
    started = None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{group} exited with {process.returncode} before the end")
        done = committed(admin, group, topics)
        now = time.perf_counter()
        if started is None and done > 0:
            started = now
        if done >= records:
            return now - (started or now)
        time.sleep(0.02)
    raise TimeoutError(f"{group} committed too little within {limit_s}s")


def run_streamhouse(
    broker: KafkaBroker, case: str, topics: dict[str, str], timed: list[str], records: int
) -> float:
    directory = Path(tempfile.mkdtemp(prefix="bench-join-"))
    sql = directory / "query.sql"
    out = f"{timed[0]}-sh"
    if case == "stream-stream":
        sql.write_text(STREAMS_DDL.format(**topics) + CORRELATE.format(out=out))
    else:
        key = "" if case.endswith("rekeyed") else " KEY"
        sql.write_text(
            ORDERS_DDL.format(key=key, **topics) + CUSTOMERS_DDL.format(**topics)
            + ENRICH.format(out=out)
        )  # fmt: skip
    query_id = uuid.uuid4().hex[:8]
    process = QueryProcess(
        sql, directory, broker.bootstrap, query_id,
        extra_env={"STREAMHOUSE_CHECKPOINT_INTERVAL_MS": "250"},
    ).start()  # fmt: skip
    try:
        return records / wait_for_commits(
            broker.admin(), f"streamhouse-{query_id}", timed, records, 900
        )
    finally:
        process.stop()


def run_quix(
    broker: KafkaBroker, case: str, topics: dict[str, str], timed: list[str], records: int
) -> float:
    group = f"quix-{uuid.uuid4().hex[:8]}"
    log = Path(tempfile.mkdtemp(prefix="bench-quix-")) / "quix.log"
    left, right = (
        (topics["clicks"], topics["buys"])
        if case == "stream-stream"
        else (topics["orders"], topics["customers"])
    )
    process = start_process(
        [str(quix_python()), str(BENCH / "quix_joins.py"), broker.bootstrap, left, right,
         f"{left}-quix", group, case],
        log,
    )  # fmt: skip
    try:
        return records / wait_for_commits(broker.admin(), group, timed, records, 900, process)
    finally:
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--table-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--quix", action="store_true", help="also run Quix Streams")
    args = parser.parse_args()
    broker = KafkaBroker.start()
    try:
        for case in args.case or CASES:
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(args.runs):
                tag = uuid.uuid4().hex[:6]
                topics: dict[str, str] = {}
                if case == "stream-stream":
                    topics["clicks"] = broker.create_topic(f"clicks-{tag}", 1)
                    topics["buys"] = broker.create_topic(f"buys-{tag}", 1)
                    load_streams(broker.bootstrap, topics["clicks"], topics["buys"], args.records)
                    timed = [topics["clicks"], topics["buys"]]
                else:
                    topics["customers"] = broker.create_topic(f"customers-{tag}", 1)
                    topics["orders"] = broker.create_topic(f"orders-{tag}", 1)
                    load_customers(broker.bootstrap, topics["customers"], args.table_rows)
                    load_orders(broker.bootstrap, topics["orders"], args.records, args.table_rows)
                    timed = [topics["orders"]]
                ours.append(run_streamhouse(broker, case, topics, timed, args.records))
                if args.quix and case != "stream-table-rekeyed":
                    theirs.append(run_quix(broker, case, topics, timed, args.records))
            median = statistics.median(ours)
            line = f"{case:<22} {args.records:>9,} records  StreamHouse {median:>9,.0f} events/s"
            if theirs:
                their_median = statistics.median(theirs)
                line += f" | Quix Streams {their_median:>8,.0f} events/s"
                line += f" | x{median / their_median:.1f}"
            print(line, flush=True)
            print(
                f"{'':<22} runs: StreamHouse {', '.join(f'{r:,.0f}' for r in ours)}"
                + (f"; Quix {', '.join(f'{r:,.0f}' for r in theirs)}" if theirs else ""),
                flush=True,
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
