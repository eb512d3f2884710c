"""The operator's own Prometheus metrics: reconciles, their errors and durations, and the
queries per lifecycle state. Served on STREAMHOUSE_OPERATOR_METRICS_PORT (the chart's metrics
Service) when that is set.

A query is named by `query_namespace` and `query`, not `namespace`: a ServiceMonitor sets
`namespace` to the operator's own namespace, and Prometheus would rename ours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streamhouse_operator.models.status import LifecycleState


class OperatorMetrics:
    """One registry per operator (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "streamhouse_operator_reconciles",
            "Reconciles of a StreamQuery, by the lifecycle state they ended in",
            ["lifecycle_state"],
            registry=r,
        )
        self.errors = Counter(
            "streamhouse_operator_reconcile_errors",
            "Reconciles that raised (kopf retries them)",
            registry=r,
        )
        self.duration = Histogram(
            "streamhouse_operator_reconcile_duration_seconds",
            "Time one reconcile took",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.queries = Gauge(
            "streamhouse_operator_queries",
            "StreamQueries per lifecycle state",
            ["lifecycle_state"],
            registry=r,
        )
        self.ready = Gauge(
            "streamhouse_operator_query_ready",
            "1 when the query's Ready condition is True, else 0",
            ["query_namespace", "query"],
            registry=r,
        )
        self._states: dict[tuple[str, str], LifecycleState] = {}
        for state in LifecycleState:
            self.queries.labels(lifecycle_state=state.value).set(0)

    @contextmanager
    def reconciling(self) -> Iterator[None]:
        """Times the block; an exception counts as an error (and propagates)."""
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.errors.inc()
            raise
        finally:
            self.duration.observe(time.perf_counter() - started)

    def observed(
        self, namespace: str, name: str, state: LifecycleState | None, ready: bool
    ) -> None:
        """Record the outcome of a reconcile of one query."""
        if state is not None:
            self.reconciles.labels(lifecycle_state=state.value).inc()
            self._states[(namespace, name)] = state
        self.ready.labels(query_namespace=namespace, query=name).set(1 if ready else 0)
        self._recount()

    def forget(self, namespace: str, name: str) -> None:
        """A deleted query leaves the figures."""
        self._states.pop((namespace, name), None)
        with suppress(KeyError):
            self.ready.remove(namespace, name)
        self._recount()

    def _recount(self) -> None:
        counts = dict.fromkeys(LifecycleState, 0)
        for state in self._states.values():
            counts[state] += 1
        for state, count in counts.items():
            self.queries.labels(lifecycle_state=state.value).set(count)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics in a daemon thread."""
        start_http_server(port, addr=address, registry=self.registry)
