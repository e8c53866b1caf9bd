"""Collector metrics in the Prometheus text format, summed over every worker process.

Counters, gauges and the text format are prometheus_client's. When ``PROMETHEUS_MULTIPROC_DIR``
is set (``blockprobe collector serve`` sets it to a fresh directory under the data directory
before its workers start), every worker writes its counters there and ``render`` sums them all
(prometheus_client's multiprocess mode), so ``/metrics`` shows the collector, not the worker that
answered. Without it (one process, tests), the counters are this process's. No metric has a
client address.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created samples


class Metrics:
    """Bundles accepted, bundles rejected by reason, measurements stored."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        self._accepted = Counter(
            "blockprobe_bundles_accepted", "Bundles stored.", registry=self._registry
        )
        self._duplicates = Counter(
            "blockprobe_bundles_duplicate", "Bundles received again (200).", registry=self._registry
        )
        self._rejected = Counter(
            "blockprobe_bundles_rejected",
            "Requests refused, by reason.",
            ["reason"],
            registry=self._registry,
        )
        self._measurements = Counter(
            "blockprobe_measurements_stored", "Measurements stored.", registry=self._registry
        )

    def accept(self, measurements: int) -> None:
        self._accepted.inc()
        self._measurements.inc(measurements)

    def duplicate(self) -> None:
        self._duplicates.inc()

    def reject(self, reason: str) -> None:
        self._rejected.labels(reason=reason).inc()

    def render(self, gauges: Mapping[str, tuple[str, float]] | None = None) -> str:
        """The exposition text; ``gauges`` maps a name to (help, value), read at this scrape."""
        registry = CollectorRegistry(auto_describe=False)
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(self._registry)
        registry.register(_Gauges(gauges or {}))
        return generate_latest(registry).decode()


class _Gauges(Collector):
    """Gauges whose values the caller read just now (the log's size)."""

    def __init__(self, gauges: Mapping[str, tuple[str, float]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        """One gauge family per name."""
        for name, (help_text, value) in self._gauges.items():
            yield GaugeMetricFamily(name, help_text, value=value)
