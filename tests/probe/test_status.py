"""status: what the volunteer sees, from the state directory, as text, JSON and Prometheus."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

from rich.console import Console

from probe.config import ProbeConfig
from probe.daemon import consent, metrics, status
from probe.daemon.settings import DaemonConfig, LoadedConfig
from probe.daemon.state import DaemonRecord, EndpointVerdict, RunRecord, State
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox


def loaded(**daemon: object) -> LoadedConfig:
    return LoadedConfig(ProbeConfig(), DaemonConfig.model_validate(daemon), None)


def populate(state_dir, *, pid: int) -> None:
    now = datetime.now(UTC)
    with State(state_dir) as state:
        state.record_run(
            RunRecord(
                platform="x",
                started_at=now - timedelta(minutes=3),
                finished_at=now - timedelta(minutes=2),
                outcome="measured",
                verdict="blocked",
                method="tls.reset",
                endpoints=(EndpointVerdict(target="https://x.com/", verdict="blocked"),),
                bytes_used=123_456,
                budget_bytes=1_048_576,
            )
        )
        state.add_usage(measured=123_456, upload=4_000, runs=1)
        state.add_usage(skipped=1)
        state.record_contact(False, "ConnectError: refused")
        state.record_daemon(
            DaemonRecord(
                pid=pid,
                started_at=now,
                version="0",
                config_source="/etc/blockprobe/probe.toml",
                cap_net_raw=False,
                metered=True,
                run_bytes=500_000,
                daily_bytes=10_000_000,
                collector_url="https://collector.example",
            )
        )
    with Outbox(state_dir / OUTBOX_FILE) as box:
        box.put("a" * 64, b"{}")
        box.put("b" * 64, b"{}")
    KeyStore(state_dir).for_network(17557)
    consent.record(state_dir, "flag")


def test_status_of_a_running_daemon_shows_its_figures(tmp_path):
    """Last run and verdict, data used against the caps the daemon uses, outbox, consent, keys."""
    populate(tmp_path, pid=os.getpid())
    report = status.collect(tmp_path, loaded(), platforms=["x", "youtube"])
    assert report.daemon.running
    assert ["x", "youtube"] == [p.name for p in report.platforms]
    assert "blocked" == report.platforms[0].last_run.verdict
    assert report.platforms[1].last_run is None
    b = report.budget
    assert (127_456, 10_000_000, 500_000, 1, 1) == (
        b.used_bytes,
        b.daily_bytes,
        b.run_bytes,
        b.runs,
        b.skipped_runs,
    )
    assert b.metered and not b.throughput_enabled
    assert 2 == report.outbox.pending and 0 == report.outbox.dropped
    assert "https://collector.example" == report.collector.url
    assert report.collector.last_contact is not None and not report.collector.last_contact.ok
    assert [17557] == [k.asn for k in report.keys]
    assert report.consent is not None
    assert report == status.StatusReport.model_validate_json(report.model_dump_json())


def test_a_stopped_daemons_figures_come_from_the_config(tmp_path):
    """With no live daemon, the caps shown are the configuration's."""
    populate(tmp_path, pid=2**22 + 12345)  # no such process
    report = status.collect(tmp_path, loaded(daily_bytes=5, metered=False))
    assert not report.daemon.running
    assert (5, False) == (report.budget.daily_bytes, report.budget.metered)


def test_a_fresh_state_dir_has_an_empty_status(tmp_path):
    """Before the first run: no runs, no outbox, no consent, nothing crashes."""
    report = status.collect(tmp_path / "nothing", loaded())
    assert () == report.platforms and report.outbox is None and report.consent is None
    text = io.StringIO()
    status.render_text(report, Console(file=text, width=120))
    assert "not running" in text.getvalue() and "consent: not given" in text.getvalue()


def test_text_rendering_names_verdicts_data_and_the_outbox(tmp_path):
    """The human form has the verdict, the day's data against its cap and the outbox length."""
    populate(tmp_path, pid=os.getpid())
    report = status.collect(tmp_path, loaded())
    out = io.StringIO()
    status.render_text(report, Console(file=out, width=160))
    text = out.getvalue()
    assert "blocked (tls.reset)" in text
    assert "124.5 KiB of 9.5 MiB" in text
    assert "outbox: 2 waiting" in text
    assert "metered yes" in text and "1 skipped" in text


def test_prometheus_text_has_typed_metrics_with_labels(tmp_path):
    """/metrics: HELP and TYPE for each metric, the verdict as a label."""
    populate(tmp_path, pid=os.getpid())
    text = metrics.render(status.collect(tmp_path, loaded()))
    assert "# TYPE blockprobe_data_used_today_bytes gauge" in text
    assert "blockprobe_data_used_today_bytes 127456" in text
    assert 'blockprobe_platform_verdict{platform="x",verdict="blocked"} 1' in text
    assert "blockprobe_outbox_pending 2" in text
    assert "# TYPE blockprobe_outbox_dropped_total counter" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2


def test_cap_net_raw_reads_the_effective_capabilities(tmp_path):
    """CAP_NET_RAW is bit 13 of CapEff; a process that does not exist has none."""
    expected = bool(
        int(
            next(
                line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff:")
            ),
            16,
        )
        & (1 << 13)
    )
    assert expected == status.cap_net_raw()
    assert status.cap_net_raw(2**22 + 12345) is False
