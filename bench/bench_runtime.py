"""End-to-end throughput of `streamhouse run` (and Quix Streams) against the local broker.

Loads N ~120-byte JSON orders into a source topic, starts the processor on them and reports
events/s from its first committed offset until it has committed every input offset: the same
yardstick for both engines (each commits at least every 250 ms). Run:

    .venv/bin/python -m bench.bench_runtime --records 1000000 --runs 3 [--quix]

`--quix` builds bench/.venv-quix (Quix Streams pins older confluent-kafka and pydantic than
StreamHouse) and runs the same queries with it on the same data, side by side.
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

BENCH = Path(__file__).resolve().parent
QUIX_VENV = BENCH / ".venv-quix"
QUIX_VERSION = "3.28.1"

DDL = (
    "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2), "
    "status VARCHAR, created_at TIMESTAMP) WITH (kafka_topic = '{topic}', "
    "value_format = 'JSON', timestamp = 'created_at');\n"
)
# The orders are keyed by customer; declaring it (KEY) lets a GROUP BY customer_id run without
# a repartition topic, as in Kafka Streams.
DDL_KEYED = DDL.replace("customer_id VARCHAR,", "customer_id VARCHAR KEY,")
QUERIES = {
    "filter": "CREATE STREAM high WITH (kafka_topic='{out}') AS "
    "SELECT * FROM orders WHERE amount > 1000;",
    "projection": "CREATE STREAM summary WITH (kafka_topic='{out}') AS "
    "SELECT order_id, customer_id, amount * 0.03 AS fee FROM orders;",
    "tumbling": "CREATE STREAM counts WITH (kafka_topic='{out}') AS SELECT customer_id, "
    "COUNT(*) AS n, SUM(amount) AS total FROM orders "
    "GROUP BY customer_id, TUMBLE(created_at, INTERVAL '1' MINUTE);",
}
QUERIES["tumbling-keyed"] = QUERIES["tumbling"]


def load(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 10_000,
         "queue.buffering.max.messages": 2_000_000, "compression.type": "lz4"}
    )  # fmt: skip
    base = 1_700_000_000_000
    for index in range(records):
        amount = (index * 7919) % 200_000 / 100
        value = (
            f'{{"order_id":{index},"customer_id":"c-{index % 1000}","amount":{amount:.2f},'
            f'"status":"placed","created_at":{base + index * 10}}}'
        )
        while True:
            try:
                producer.produce(topic, value.encode(), f"c-{index % 1000}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def committed(admin: AdminClient, group: str, topic: str, partitions: int) -> int:
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    futures = admin.list_consumer_group_offsets([request])
    result = futures[group].result(timeout=10)
    return sum(max(0, tp.offset) for tp in result.topic_partitions)


def wait_for_commits(
    admin: AdminClient, group: str, topic: str, partitions: int, records: int, limit_s: float
) -> float:
    """Seconds from the first committed progress to the last input offset committed."""
    started = None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        done = committed(admin, group, topic, partitions)
        now = time.perf_counter()
        if started is None and done > 0:
            started = now
        if done >= records:
            return now - (started or now)
        time.sleep(0.02)
    raise TimeoutError(f"{group} committed too little within {limit_s}s")


def run_streamhouse(
    broker: KafkaBroker,
    topic: str,
    query: str,
    records: int,
    producer_config: str = "",
    source: str = "",
) -> float:
    """`source`: a checkout whose runtime to run instead of this one (its `runtime/` first on
    PYTHONPATH), for a side-by-side of two versions on the same data."""
    directory = Path(tempfile.mkdtemp(prefix="bench-"))
    sql = directory / "query.sql"
    ddl = DDL_KEYED if query.endswith("-keyed") else DDL
    sql.write_text(ddl.format(topic=topic) + QUERIES[query].format(out=f"{topic}-{query}-sh"))
    query_id = uuid.uuid4().hex[:8]
    process = QueryProcess(
        sql, directory, broker.bootstrap, query_id,
        extra_env={"STREAMHOUSE_CHECKPOINT_INTERVAL_MS": "250"}
        | ({"STREAMHOUSE_PRODUCER_CONFIG": producer_config} if producer_config else {})
        | ({"PYTHONPATH": str(Path(source) / "runtime")} if source else {}),
    ).start()  # fmt: skip
    try:
        partitions = len(broker.admin().list_topics(topic).topics[topic].partitions)
        return records / wait_for_commits(
            broker.admin(), f"streamhouse-{query_id}", topic, partitions, records, 600
        )
    finally:
        process.stop()


def quix_python() -> Path:
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"],
            check=True,
        )
    return python


def run_quix(broker: KafkaBroker, topic: str, query: str, records: int) -> float:
    group = f"quix-{uuid.uuid4().hex[:8]}"
    log = Path(tempfile.mkdtemp(prefix="bench-quix-")) / "quix.log"
    process = start_process(
        [str(quix_python()), str(BENCH / "quix_app.py"), broker.bootstrap, topic,
         f"{topic}-{query}-quix", group, query],
        log,
    )  # fmt: skip
    try:
        partitions = len(broker.admin().list_topics(topic).topics[topic].partitions)
        return records / wait_for_commits(broker.admin(), group, topic, partitions, records, 900)
    finally:
        stop_process(process)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--query", choices=sorted(QUERIES), action="append")
    parser.add_argument("--quix", action="store_true", help="also run Quix Streams")
    parser.add_argument(
        "--baseline-producer-config",
        default="",
        metavar="JSON",
        help="also run StreamHouse with these producer overrides on the same data, "
        'alternating (e.g. \'{"partitioner": "consistent_random"}\')',
    )
    parser.add_argument(
        "--baseline-source",
        default="",
        metavar="DIR",
        help="also run the runtime of another checkout (e.g. the previous main) on the same "
        "data, alternating",
    )
    args = parser.parse_args()
    broker = KafkaBroker.start()
    try:
        for query in args.query or sorted(QUERIES):
            ours: list[float] = []
            theirs: list[float] = []
            baseline: list[float] = []
            for _ in range(args.runs):
                topic = broker.create_topic(f"orders-{uuid.uuid4().hex[:6]}", args.partitions)
                load(broker.bootstrap, topic, args.records)
                ours.append(run_streamhouse(broker, topic, query, args.records))
                if args.baseline_producer_config or args.baseline_source:
                    baseline.append(
                        run_streamhouse(
                            broker,
                            topic,
                            query,
                            args.records,
                            args.baseline_producer_config,
                            args.baseline_source,
                        )
                    )
                if args.quix:
                    theirs.append(run_quix(broker, topic, query, args.records))
            median = statistics.median(ours)
            line = f"{query:<14} {args.records:>9,} records  StreamHouse {median:>9,.0f} events/s"
            if theirs:
                ratio = median / statistics.median(theirs)
                line += (
                    f" | Quix Streams {statistics.median(theirs):>8,.0f} events/s | x{ratio:.1f}"
                )
            if baseline:
                line += f" | baseline {statistics.median(baseline):>9,.0f} events/s"
            print(line, flush=True)
            print(
                f"{'':<14} runs: StreamHouse {', '.join(f'{r:,.0f}' for r in ours)}"
                + (f"; Quix {', '.join(f'{r:,.0f}' for r in theirs)}" if theirs else "")
                + (f"; baseline {', '.join(f'{r:,.0f}' for r in baseline)}" if baseline else ""),
                flush=True,
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
