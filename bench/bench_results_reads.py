"""How long pull reads of TABLE results hold up record processing in the same process.

A running aggregate over 100,000 keys in RocksDB; the main thread processes batches of records
through the stage executor (as the pod's loop does) and checkpoints, while HTTP-worker-like
threads read full result pages (1,000 rows) back to back through the pod's /results endpoint.
Prints the batch times with and without the readers: the difference is what reads cost the
processing loop (the GIL is handed over every 5 ms, sys.getswitchinterval()). Run:

    .venv/bin/python -m bench.bench_results_reads [--readers 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from streamhouse_runtime.endpoints import HealthState, results_route, serve
from streamhouse_runtime.exec.pipeline import MemoryRecord, StageExecutor, StageSettings
from streamhouse_runtime.exec.results import MAX_LIMIT, TableReader
from streamhouse_runtime.exec.topology import split_stages
from streamhouse_runtime.metrics import RuntimeMetrics
from streamhouse_runtime.plan.nodes import Sink
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.state.backend import RocksdbStateBackend
from streamhouse_runtime.testing.runner import MemoryTopics

SQL = (
    "CREATE STREAM s (k VARCHAR KEY, v BIGINT) WITH (kafka_topic='s', value_format='JSON');\n"
    "CREATE TABLE t AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM s GROUP BY k;"
)
KEYS = 100_000
BATCH = 500


def _batch(start: int) -> list[MemoryRecord]:
    return [
        MemoryRecord("s", 0, start + i, 0, f"k{(start + i) % KEYS}".encode(), b'{"v": 1}', None)
        for i in range(BATCH)
    ]


def _measure(executor: StageExecutor, backend: RocksdbStateBackend, seconds: float) -> list[float]:
    times: list[float] = []
    out = MemoryTopics()
    offset = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        executor.process(_batch(offset), out)
        if offset % (BATCH * 20) == 0:
            backend.commit(executor.changes(), {("s", 0): offset})
        times.append((time.perf_counter() - started) * 1000)
        offset += BATCH
        out.records.clear()
    return times


def _longest_stall_ms(seconds: float) -> tuple[float, float]:
    """Small units of Python work back to back: (p99.9, max) of the gaps between them, i.e.
    how long this thread waited for the GIL at once."""
    gaps: list[float] = []
    deadline = time.monotonic() + seconds
    last = time.perf_counter()
    while time.monotonic() < deadline:
        sum(range(200))  # ~2 us of work
        now = time.perf_counter()
        gaps.append((now - last) * 1000)
        last = now
    gaps.sort()
    return gaps[int(len(gaps) * 0.999)], gaps[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        backend = RocksdbStateBackend(Path(folder) / "db")
        plan = plan_statement(analyze(SQL).persistent_queries[0])
        assert isinstance(plan, Sink)
        executor = StageExecutor(
            split_stages(plan)[0], StageSettings(query_id="b", dead_letter_topic="d"), backend
        )
        for start in range(0, KEYS, BATCH):
            executor.process(_batch(start), MemoryTopics())
        backend.commit(executor.changes(), {})
        reader = TableReader(executor, backend, lambda: [0])
        server = serve(RuntimeMetrics(), HealthState(), "127.0.0.1", 0,
                       {"/results": results_route(reader, 0)})  # fmt: skip
        url = f"http://127.0.0.1:{server.server_address[1]}/results?limit={MAX_LIMIT}"
        baseline = _measure(executor, backend, args.seconds)
        stall_alone = _longest_stall_ms(args.seconds / 2)
        stop = threading.Event()
        pages: list[float] = []

        def read() -> None:
            token = ""
            while not stop.is_set():
                started = time.perf_counter()
                with urllib.request.urlopen(url + (f"&after={token}" if token else "")) as r:
                    token = json.loads(r.read())["next"] or ""
                pages.append((time.perf_counter() - started) * 1000)

        threads = [threading.Thread(target=read) for _ in range(args.readers)]
        for thread in threads:
            thread.start()
        loaded = _measure(executor, backend, args.seconds)
        stall_loaded = _longest_stall_ms(args.seconds / 2)
        stop.set()
        for thread in threads:
            thread.join()
        server.shutdown()
        backend.close()

    def describe(name: str, values: list[float]) -> str:
        values = sorted(values)
        p99 = values[int(len(values) * 0.99)]
        return (f"{name}: {len(values)} batches of {BATCH}, median {statistics.median(values):.2f} "
                f"ms, p99 {p99:.2f} ms, max {values[-1]:.2f} ms")  # fmt: skip

    print(describe("processing alone", baseline))
    print(describe(f"processing with {args.readers} readers", loaded))
    print(f"GIL waits of a busy thread alone: p99.9 {stall_alone[0]:.2f} ms, "
          f"max {stall_alone[1]:.2f} ms")  # fmt: skip
    print(f"GIL waits with {args.readers} readers: p99.9 {stall_loaded[0]:.2f} ms, "
          f"max {stall_loaded[1]:.2f} ms")  # fmt: skip
    print(f"result pages of {MAX_LIMIT} rows: {len(pages)}, median "
          f"{statistics.median(pages):.1f} ms each")  # fmt: skip


if __name__ == "__main__":
    main()
