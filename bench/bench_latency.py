"""End-to-end latency of `streamhouse run` at a steady input rate, through the local broker.

A producer writes orders at --rate events/s with `created_at` = the wall clock; a consumer
reads the query's output topic and measures wall clock minus `created_at` for every record:
input topic -> runtime -> output topic -> consumer. Run:

    .venv/bin/python -m bench.bench_latency [--rate 10000] [--seconds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer
from tests.harness.kafka import KafkaBroker
from tests.harness.query_process import QueryProcess

from bench.bench_runtime import DDL

QUERY = (
    "CREATE STREAM high WITH (kafka_topic='{out}') AS "
    "SELECT order_id, customer_id, amount, created_at FROM orders WHERE amount > 0;"
)


def produce_steadily(bootstrap: str, topic: str, rate: int, seconds: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        now_ms = int(time.time() * 1000)
        for _ in range(per_tick):
            value = (
                f'{{"order_id":{sent},"customer_id":"c-{sent % 1000}","amount":12.50,'
                f'"status":"placed","created_at":{now_ms}}}'
            )
            producer.produce(topic, value.encode())
            sent += 1
        producer.poll(0)
        next_tick = started + (sent / per_tick) * tick
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    producer.flush(30)


def measure(broker: KafkaBroker, rate: int, seconds: float) -> list[float]:
    topic = broker.create_topic(f"orders-{uuid.uuid4().hex[:6]}", 1)
    output = f"{topic}-out"
    broker.create_topic(output, 1)
    directory = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    sql = directory / "query.sql"
    sql.write_text(DDL.format(topic=topic) + QUERY.format(out=output))
    process = QueryProcess(sql, directory, broker.bootstrap, uuid.uuid4().hex[:8]).start()
    latencies: list[float] = []
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": uuid.uuid4().hex,
         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 5,
         "fetch.queue.backoff.ms": 1}
    )  # fmt: skip
    consumer.subscribe([output])
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for message in consumer.consume(1000, 0.01):
                value = message.value()
                if message.error() or value is None:
                    continue
                now_ms = time.time() * 1000
                latencies.append(now_ms - orjson.loads(value)["created_at"])

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(2)  # the reader has joined its group
    try:
        produce_steadily(broker.bootstrap, topic, rate, seconds)
        time.sleep(2)
    finally:
        stop.set()
        reader.join()
        consumer.close()
        process.stop()
    warmup = int(rate * 2)  # the first two seconds include start-up effects
    return latencies[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    broker = KafkaBroker.start()
    try:
        p50s, p99s = [], []
        for _ in range(args.runs):
            values = sorted(measure(broker, args.rate, args.seconds))
            p50 = values[len(values) // 2]
            p99 = values[int(len(values) * 0.99)]
            p50s.append(p50)
            p99s.append(p99)
            print(f"{len(values):,} records at {args.rate:,}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms",
                  flush=True)  # fmt: skip
        print(
            f"median over {args.runs} runs: p50 {statistics.median(p50s):.1f} ms, "
            f"p99 {statistics.median(p99s):.1f} ms"
        )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
