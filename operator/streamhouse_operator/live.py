"""Live figures for status: scraped from the query pods' /metrics, summed over the pods.

The pods export Prometheus text (streamhouse_runtime.metrics); the operator reads it the way
Prometheus would, with prometheus-client's own parser, from each running pod's IP and metrics
port. Rates are the change of the record counters between two scrapes of the same query, so
the first observation after an operator start has totals but no rates yet. A pod that does
not answer is left out; no pod answering leaves the figures out of status.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0
MAX_PARALLEL_SCRAPES = 16
INTERNAL_TOPIC_PREFIX = "streamhouse-"  # repartition, changelog and default dead-letter topics


@dataclass(frozen=True)
class PodFigures:
    """One pod's counters and gauges, as exported."""

    records_in: float = 0.0  # from the query's own input topics, not internal ones
    records_out: float = 0.0  # to the query's output topic
    dead_lettered: float = 0.0
    lag: float = 0.0  # over every topic the pod reads, internal ones included
    watermark_ms: float | None = None


@dataclass(frozen=True)
class LiveFigures:
    """What status shows, over every pod that answered."""

    pods: int
    lag: int
    dead_lettered: int
    records_in: float
    records_out: float
    watermark_ms: int | None
    input_rate: float | None = None
    output_rate: float | None = None


def parse(text: str) -> PodFigures:
    """The figures in one pod's Prometheus text exposition."""
    records_in = records_out = dead = lag = 0.0
    watermark: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            topic = sample.labels.get("topic", "")
            external = not topic.startswith(INTERNAL_TOPIC_PREFIX)
            if sample.name == "streamhouse_records_in_total" and external:
                records_in += sample.value
            elif sample.name == "streamhouse_records_out_total" and external:
                records_out += sample.value
            elif sample.name == "streamhouse_dead_letter_records_total":
                dead += sample.value
            elif sample.name == "streamhouse_consumer_lag":  # internal backlog counts too
                lag += sample.value
            elif sample.name == "streamhouse_watermark_ms" and sample.value > 0:
                watermark = sample.value
    return PodFigures(records_in, records_out, dead, lag, watermark)


def combine(figures: Iterable[PodFigures]) -> LiveFigures | None:
    """Sums over pods; the watermark is the lowest, as the query's is the lowest partition's."""
    pods = list(figures)
    if not pods:
        return None
    watermarks = [p.watermark_ms for p in pods if p.watermark_ms is not None]
    return LiveFigures(
        pods=len(pods),
        lag=int(sum(p.lag for p in pods)),
        dead_lettered=int(sum(p.dead_lettered for p in pods)),
        records_in=sum(p.records_in for p in pods),
        records_out=sum(p.records_out for p in pods),
        watermark_ms=int(min(watermarks)) if watermarks else None,
    )


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
            return str(response.read().decode())
    except OSError as error:
        log.debug("scraping %s: %s", url, error)
        return None


def pod_metrics_urls(pods: Iterable[Mapping[str, Any]], port: int) -> list[str]:
    """/metrics of every pod that has an IP and is running."""
    urls = []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") == "Running" and status.get("podIP"):
            urls.append(f"http://{status['podIP']}:{port}/metrics")
    return urls


class Scraper:
    """Scrapes a query's pods and turns counter deltas between scrapes into rates."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, LiveFigures]] = {}

    def figures(self, key: str, urls: Iterable[str]) -> LiveFigures | None:
        targets = list(urls)
        if not targets:
            return None
        # Side by side: one slow pod costs one timeout, not one per pod.
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_SCRAPES, len(targets))) as pool:
            texts = [text for text in pool.map(fetch, targets) if text is not None]
        figures = combine(parse(text) for text in texts)
        if figures is None:
            return None
        return self.with_rates(key, figures, time.monotonic())

    def with_rates(self, key: str, figures: LiveFigures, now: float) -> LiveFigures:
        previous = self._last.get(key)
        self._last[key] = (now, figures)
        if previous is None or now <= previous[0] or previous[1].pods != figures.pods:
            return figures  # first sight, or pods came or went: counters are not comparable
        elapsed = now - previous[0]
        input_rate = (figures.records_in - previous[1].records_in) / elapsed
        output_rate = (figures.records_out - previous[1].records_out) / elapsed
        if input_rate < 0 or output_rate < 0 or math.isnan(input_rate):
            return figures  # a pod restarted and its counters began again
        return replace(figures, input_rate=input_rate, output_rate=output_rate)

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
