"""End-to-end throughput of `streamhouse run` against the local Kafka broker.

Loads N ~120-byte JSON orders into a source topic, starts the runtime on them and reports
events/s from the first consumed record until every input was consumed and every output was
delivered (the process's own counters, scraped from /metrics). Run:

    .venv/bin/python -m bench.bench_runtime [--records 1000000] [--runs 3] [--query filter]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from tests.harness.kafka import KafkaBroker
from tests.harness.query_process import QueryProcess

DDL = (
    "CREATE STREAM orders (order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2), "
    "status VARCHAR, created_at TIMESTAMP) WITH (kafka_topic = '{topic}', "
    "value_format = 'JSON', timestamp = 'created_at');\n"
)
QUERIES = {
    "filter": "CREATE STREAM high WITH (kafka_topic='{out}') AS "
    "SELECT * FROM orders WHERE amount > 1000;",
    "projection": "CREATE STREAM summary WITH (kafka_topic='{out}') AS "
    "SELECT order_id, customer_id, amount * 0.03 AS fee FROM orders;",
    "running-total": "CREATE TABLE totals WITH (kafka_topic='{out}') AS SELECT customer_id, "
    "COUNT(*) AS n, SUM(amount) AS total FROM orders GROUP BY customer_id;",
    "tumbling": "CREATE STREAM counts WITH (kafka_topic='{out}') AS SELECT customer_id, "
    "COUNT(*) AS n, SUM(amount) AS total FROM orders "
    "GROUP BY customer_id, TUMBLE(created_at, INTERVAL '1' MINUTE);",
}


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


def run_once(broker: KafkaBroker, query: str, records: int, partitions: int) -> float:
    topic = broker.create_topic(f"orders-{uuid.uuid4().hex[:6]}", partitions)
    load(broker.bootstrap, topic, records)
    directory = Path(tempfile.mkdtemp(prefix="bench-"))
    sql = directory / "query.sql"
    sql.write_text(DDL.format(topic=topic) + QUERIES[query].format(out=f"{topic}-out"))
    process = QueryProcess(sql, directory, broker.bootstrap, uuid.uuid4().hex[:8]).start()
    try:
        started = None
        while True:
            consumed = process.metric(f'streamhouse_records_in_total{{topic="{topic}"')
            now = time.perf_counter()
            if started is None and consumed > 0:
                started = now - 0.05
            # Done when the source is consumed and no stage has anything left to read.
            if consumed >= records and process.metric("streamhouse_consumer_lag") == 0:
                return records / (now - (started or now))
            time.sleep(0.05)
    finally:
        process.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--query", choices=sorted(QUERIES), action="append")
    args = parser.parse_args()
    broker = KafkaBroker.start()
    try:
        for query in args.query or sorted(QUERIES):
            rates = [
                run_once(broker, query, args.records, args.partitions) for _ in range(args.runs)
            ]
            print(
                f"{query:<11} {args.records} records: median {statistics.median(rates):,.0f} "
                f"events/s  (runs: {', '.join(f'{r:,.0f}' for r in rates)})",
                flush=True,
            )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
