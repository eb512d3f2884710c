"""Prometheus metrics and the /metrics, /healthz and /readyz endpoints on one port."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class RuntimeMetrics:
    """Every metric a query pod exports; one registry per process (tests run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "streamhouse_records_in", "Records consumed", ["topic"], registry=r
        )
        self.records_out = Counter(
            "streamhouse_records_out", "Records produced", ["topic"], registry=r
        )
        self.dead_lettered = Counter(
            "streamhouse_dead_letter_records", "Records sent to the dead-letter topic", registry=r
        )
        self.skipped = Counter(
            "streamhouse_skipped_records", "Bad records skipped (skip policy)", registry=r
        )
        self.late = Counter("streamhouse_late_records", "Records behind the watermark", registry=r)
        self.null_keys = Counter(
            "streamhouse_null_key_records",
            "Records dropped because a GROUP BY column was NULL",
            registry=r,
        )
        self.lag = Gauge(
            "streamhouse_consumer_lag",
            "Records not yet consumed",
            ["topic", "partition"],
            registry=r,
        )
        self.latency = Histogram(
            "streamhouse_end_to_end_latency_seconds",
            "Event time to emit (sampled)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.batch_duration = Histogram(
            "streamhouse_batch_duration_seconds",
            "Time to process one consumed batch",
            registry=r,
        )
        self.checkpoint_duration = Histogram(
            "streamhouse_checkpoint_duration_seconds",
            "Time to take one checkpoint",
            registry=r,
        )
        self.state_entries = Gauge(
            "streamhouse_state_entries", "Hot state entries in memory", registry=r
        )
        self.state_bytes = Gauge(
            "streamhouse_state_size_bytes", "Estimated live RocksDB data", registry=r
        )
        self.watermark = Gauge(
            "streamhouse_watermark_ms", "Event-time watermark (epoch ms)", registry=r
        )


class HealthState:
    def __init__(self) -> None:
        self.alive = True
        self.ready = False
        self.failure = ""


def serve(
    metrics: RuntimeMetrics, health: HealthState, address: str, port: int
) -> ThreadingHTTPServer:
    """Start the HTTP endpoints in a daemon thread; returns the server (port 0 picks one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name is http.server's API
            if self.path.startswith("/metrics"):
                self._reply(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                ok = health.alive
                self._reply(200 if ok else 503, b"ok\n" if ok else health.failure.encode())
            elif self.path.startswith("/readyz"):
                ok = health.ready and health.alive
                reason = f"not ready: {health.failure}\n" if health.failure else "not ready\n"
                self._reply(200 if ok else 503, b"ready\n" if ok else reason.encode())
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
