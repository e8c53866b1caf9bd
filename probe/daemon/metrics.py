"""The daemon's ``/metrics`` page: the status (``probe.daemon.status``) as Prometheus metrics.

prometheus_client writes the exposition format and serves it (``start_http_server``: a small
WSGI server in a thread of its own, on 127.0.0.1 only). Each scrape reads the state directory
afresh through ``StatusCollector``, in the server's thread, so the daemon's event loop never
waits on a scrape. This module is imported only when ``metrics_port`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.daemon.status import StatusReport


def families(report: StatusReport) -> list[Metric]:
    """The metrics of one status report."""
    b, o = report.budget, report.outbox
    last = report.collector.last_contact

    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, help_text, value=value)

    out: list[Metric] = [
        gauge("blockprobe_data_used_today_bytes", "Bytes used today.", b.used_bytes),
        gauge("blockprobe_data_daily_cap_bytes", "Daily data cap.", b.daily_bytes),
        gauge("blockprobe_data_run_cap_bytes", "Per-run data cap.", b.run_bytes),
        gauge("blockprobe_runs_today", "Runs today.", b.runs),
        gauge("blockprobe_runs_skipped_today", "Runs skipped today.", b.skipped_runs),
        gauge("blockprobe_metered", "1 in metered mode.", int(b.metered)),
        gauge("blockprobe_outbox_pending", "Bundles waiting.", o.pending if o else 0),
        gauge("blockprobe_outbox_dead", "Bundles refused.", o.dead if o else 0),
        CounterMetricFamily(
            "blockprobe_outbox_dropped",
            "Bundles dropped (outbox full).",
            value=o.dropped if o else 0,
        ),
        gauge(
            "blockprobe_collector_last_contact_ok",
            "1 if the last upload worked.",
            int(bool(last and last.ok)),
        ),
    ]
    verdict = GaugeMetricFamily(
        "blockprobe_platform_verdict", "The last run's verdict (1).", labels=["platform", "verdict"]
    )
    finished = GaugeMetricFamily(
        "blockprobe_platform_last_run_timestamp_seconds",
        "When the last run finished.",
        labels=["platform"],
    )
    used = GaugeMetricFamily(
        "blockprobe_platform_last_run_bytes", "Bytes the last run used.", labels=["platform"]
    )
    for p in report.platforms:
        r = p.last_run
        if r is None:
            continue
        verdict.add_metric([p.name, r.verdict or r.outcome], 1)
        finished.add_metric([p.name], r.finished_at.timestamp())
        used.add_metric([p.name], r.bytes_used)
    out += [verdict, finished, used]
    out.append(
        gauge(
            "blockprobe_cap_net_raw",
            "1 if packet-level tests are possible.",
            int(report.cap_net_raw),
        )
    )
    return out


class StatusCollector(Collector):
    """A prometheus_client collector that reads a fresh status report at each scrape."""

    def __init__(self, report: Callable[[], StatusReport]) -> None:
        self._report = report

    def collect(self) -> Iterable[Metric]:
        """The metrics of the status now."""
        return families(self._report())


def registry_of(report: Callable[[], StatusReport]) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one, whose process metrics would
    be read at every scrape) holding the status collector alone."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(report))
    return registry


def render(report: StatusReport) -> str:
    """One report in the Prometheus text exposition format."""
    return generate_latest(registry_of(lambda: report)).decode()


class MetricsServer:
    """prometheus_client's HTTP server for the status, on ``127.0.0.1:port``."""

    def __init__(self, port: int, report: Callable[[], StatusReport]) -> None:
        self.port = port
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(
            port, addr="127.0.0.1", registry=registry_of(report)
        )

    def close(self) -> None:
        """Stop serving and release the port (blocks up to half a second: run it in a thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2.0)
