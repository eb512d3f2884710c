"""Prometheus metrics of a query pod (served by endpoints.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
