"""The daemon in-process: scheduled runs become signed bundles that reach a collector; budgets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.config import CollectorSettings
from probe.budget import DataBudget
from probe.config import ProbeConfig
from probe.daemon.scheduler import PLATFORM_PREFIX
from probe.daemon.service import Daemon
from probe.daemon.settings import DaemonConfig, LoadedConfig, load_files
from probe.daemon.state import State
from probe.evidence.bundle import open_sealed, read_envelope
from probe.model import Measurement, Observations, RunDocument, ThroughputObservation
from probe.platforms import Platform
from probe.run import run_check
from reports.app import create_app
from tests.probe.test_run import Fakes, make_config, platform

PLATFORMS_TOML = """\
name = "{name}"
title = "{name}"
domains = ["{name}.test"]
throughput = true
[[endpoints]]
url = "https://{name}.test/"
throughput_url = "https://{name}.test/big.bin"
"""


@dataclass
class FakeRun:
    """``run_check`` over scripted fakes; records the config and budget of every call."""

    calls: list[tuple[str, ProbeConfig, DataBudget]] = field(default_factory=list)
    fakes: Fakes = field(default_factory=Fakes)
    delay: float = 0.0

    async def __call__(
        self, config: ProbeConfig, platforms: Sequence[Platform], *, budget: DataBudget
    ) -> tuple[RunDocument, list[Measurement]]:
        self.calls.append((platforms[0].name, config, budget))
        if self.delay:
            await asyncio.sleep(self.delay)
        return await run_check(
            config,
            platforms,
            measure=self.fakes.measure,
            measure_canary=self.fakes.measure_canary,
            classify=self.fakes.classify,
            budget=budget,
        )


def loaded_config(tmp_path: Path, *names: str, **daemon: Any) -> LoadedConfig:
    """A probe config over fake platforms ``names`` (in tmp_path/platforms) and daemon settings."""
    pdir = tmp_path / "platforms"
    pdir.mkdir(exist_ok=True)
    for name in names:
        (pdir / f"{name}.toml").write_text(PLATFORMS_TOML.format(name=name))
    probe = make_config(builtin_platforms=False, platform_dirs=[str(pdir)])
    settings = {"interval": 1.0, "jitter": 0.0, "upload_interval": 1.0} | daemon
    return LoadedConfig(probe, DaemonConfig.model_validate(settings), None)


def collector_client(tmp_path: Path) -> httpx.AsyncClient:
    app = create_app(CollectorSettings(data_dir=tmp_path / "collector", enroll_policy="open"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector")


async def serve_until(daemon: Daemon, condition: Callable[[], bool]) -> None:
    """Serve until ``condition`` holds (up to a minute, however loaded the machine), then stop."""
    task = asyncio.create_task(daemon.serve())
    try:
        for _ in range(1200):
            await asyncio.sleep(0.05)
            if condition():
                break
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10.0)
    assert condition()


@pytest.mark.anyio
@pytest.mark.slow
async def test_scheduled_runs_are_sealed_queued_and_uploaded(tmp_path, monkeypatch):
    """Seconds-long intervals: each run seals a bundle that the in-process collector stores."""
    monkeypatch.setattr("probe.daemon.scheduler.FIRST_RUN_WITHIN", 0.5)
    loaded = loaded_config(tmp_path, "alpha", "beta", collector_url="http://collector")
    run = FakeRun()
    async with collector_client(tmp_path) as client:
        daemon = Daemon(loaded, tmp_path / "state", run=run, client=client)
        await serve_until(daemon, lambda: len(run.calls) >= 6)  # each platform about every second
        ran = [name for name, _, _ in run.calls]
        assert {"alpha", "beta"} == set(ran)
        with State(tmp_path / "state") as state:
            last = state.last_runs()
            usage = state.usage()
            contact = state.contact()
        assert {"alpha", "beta"} == set(last)
        # the stop may land mid-run: that run is abandoned, never half-queued
        assert {r.outcome for r in last.values()} <= {"measured", "abandoned"}
        assert contact is not None and contact.ok
        assert usage.measured_bytes > 0 and usage.upload_bytes > 0
        from probe.evidence.outbox import Outbox

        with Outbox(tmp_path / "state" / "outbox.sqlite3") as box:
            pending = box.stats().pending
        stored = (await client.get("/healthz")).json()["log_size"]
        assert usage.runs == stored + pending  # one bundle per measured run, none lost
        # at the stop, only the runs in flight (one per platform) can have a bundle not sent yet
        assert stored >= 3 and pending <= 2
        for record in last.values():
            if record.outcome != "measured" or record.bundle_digest is None:
                continue
            response = await client.get(f"/api/v1/bundles/{record.bundle_digest}")
            if response.status_code == 404:  # queued just before the stop
                continue
            digest, bundle = open_sealed(read_envelope(response.content))
            assert record.bundle_digest == digest
            assert {record.platform} == {m.platform for m in bundle.measurements}
            assert 17557 == bundle.manifest.asn


@pytest.mark.anyio
async def test_a_run_is_budgeted_by_the_run_cap_and_whats_left_of_the_day(tmp_path):
    """The run's cap is min(run_bytes, daily cap - used today)."""
    loaded = loaded_config(tmp_path, "alpha", daily_bytes=700_000)
    run = FakeRun()
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    first = await daemon.run_platform("alpha")
    assert 700_000 == first.budget_bytes
    assert min(1024 * 1024, 700_000) == run.calls[0][2].limit
    assert first.bundle_bytes > 0 and 0 == daemon.state.usage().upload_bytes  # nothing sent
    second = await daemon.run_platform("alpha")
    assert 700_000 - first.bytes_used == run.calls[1][2].limit
    assert second.outcome == "measured"


@pytest.mark.anyio
async def test_uploads_count_the_bytes_sent(tmp_path):
    """With a collector, the day counts the (compressed) bytes of each upload that went out."""
    loaded = loaded_config(tmp_path, "alpha", collector_url="http://collector")
    async with collector_client(tmp_path) as client:
        daemon = Daemon(loaded, tmp_path / "state", run=FakeRun(), client=client)
        record = await daemon.run_platform("alpha")
        assert 1 == (await client.get("/healthz")).json()["log_size"]
    sent = daemon.state.usage().upload_bytes
    assert 0 < sent < record.bundle_bytes  # gzip'd on the wire


@pytest.mark.anyio
async def test_runs_are_skipped_once_the_days_budget_is_used(tmp_path):
    """Past the daily cap no run starts; the skip is counted and shown as the last run. Transfers
    shrink to fit what the day has left, then stop once they no longer fit."""
    loaded = loaded_config(tmp_path, "alpha", daily_bytes=190_000)
    run = FakeRun()
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    runs = 90
    outcomes = [(await daemon.run_platform("alpha")).outcome for _ in range(runs)]
    assert "skipped" in outcomes
    first_skip = outcomes.index("skipped")
    assert ["skipped"] * (runs - first_skip) == outcomes[first_skip:]
    assert first_skip == len(run.calls)
    transfers = [w for _, w in run.fakes.measured]
    assert transfers[0] and not transfers[-1]
    assert transfers == sorted(transfers, reverse=True)  # once they stop, they stay stopped
    usage = daemon.state.usage()
    assert runs - first_skip == usage.skipped
    assert usage.total >= 190_000
    last = daemon.state.last_runs()["alpha"]
    assert "daily data budget" in (last.reason or "")


@pytest.mark.anyio
async def test_throughput_is_skipped_when_the_day_has_too_little_left(tmp_path):
    """A day with less left than a throughput transfer still measures, without the transfer."""
    loaded = loaded_config(tmp_path, "alpha", daily_bytes=20_000)
    run = FakeRun()
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    record = await daemon.run_platform("alpha")
    assert "measured" == record.outcome
    assert [("https://alpha.test/", False)] == run.fakes.measured
    assert 1 == record.transfers_skipped


@pytest.mark.anyio
async def test_the_day_counter_persists_and_resets_the_next_day(tmp_path):
    """A restart keeps today's usage; a new day starts from zero."""
    loaded = loaded_config(tmp_path, "alpha", daily_bytes=10_000_000)
    daemon = Daemon(loaded, tmp_path / "state", run=FakeRun())
    await daemon.run_platform("alpha")
    used = daemon.state.usage().total
    daemon.state.close()
    daemon.outbox.close()
    with State(tmp_path / "state") as state:
        assert used == state.usage().total > 0
    with State(tmp_path / "state", today=lambda: date(2999, 1, 1)) as state:
        assert 0 == state.usage().total


@pytest.mark.anyio
async def test_metered_mode_skips_throughput_and_upload_transfers(tmp_path):
    """In metered mode the run's config allows no transfers; status shows it."""
    loaded = loaded_config(tmp_path, "alpha", metered=True)
    run = FakeRun()
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    record = await daemon.run_platform("alpha")
    config = run.calls[0][1]
    assert (0, 0) == (config.budget.throughput_bytes, config.budget.upload_bytes)
    assert [("https://alpha.test/", False)] == run.fakes.measured
    assert record.throughput is False


@pytest.mark.anyio
async def test_a_failing_run_is_recorded_and_the_daemon_goes_on(tmp_path):
    """An exception in a run becomes a 'failed' record; the next run works."""
    loaded = loaded_config(tmp_path, "alpha")
    run = FakeRun()
    calls = 0

    async def flaky(config, platforms, *, budget):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return await run(config, platforms, budget=budget)

    daemon = Daemon(loaded, tmp_path / "state", run=flaky)
    failed = await daemon.run_platform("alpha")
    assert ("failed", "RuntimeError: boom") == (failed.outcome, failed.reason)
    assert "measured" == (await daemon.run_platform("alpha")).outcome


@pytest.mark.anyio
async def test_bundles_wait_in_the_outbox_while_the_collector_is_down(tmp_path):
    """Unreachable collector: bundles stay queued, the contact is recorded as failed."""
    loaded = loaded_config(tmp_path, "alpha", collector_url="http://127.0.0.1:9")
    daemon = Daemon(loaded, tmp_path / "state", run=FakeRun())
    await daemon.run_platform("alpha")
    await daemon.run_platform("alpha")
    assert 2 == daemon.outbox.stats().pending
    contact = daemon.state.contact()
    assert contact is not None and not contact.ok


@pytest.mark.anyio
async def test_reload_refuses_a_broken_file_and_keeps_running_config(tmp_path, caplog):
    """SIGHUP's reload: a bad file is logged with the key and the old config stays."""
    path = tmp_path / "probe.toml"
    pdir = tmp_path / "platforms"
    pdir.mkdir()
    (pdir / "alpha.toml").write_text(PLATFORMS_TOML.format(name="alpha"))
    (pdir / "beta.toml").write_text(PLATFORMS_TOML.format(name="beta"))
    path.write_text(
        'builtin_platforms = false\nplatform_dirs = ["platforms"]\nplatforms = ["alpha"]\n'
        "[daemon]\ninterval = 600\n"
    )
    loaded = load_files(path, env={})
    daemon = Daemon(loaded, tmp_path / "state", reload=lambda: load_files(path, env={}))
    daemon.scheduler.start(paused=True)
    try:
        from probe.daemon import scheduler

        scheduler.sync(daemon.scheduler, list(daemon.platforms), loaded.daemon)
        path.write_text(path.read_text().replace("interval = 600", "interval = -5\nbogus = 1"))
        assert daemon.reload() is False
        assert loaded is daemon.loaded
        assert "daemon.interval" in caplog.text and "daemon.bogus: unknown key" in caplog.text
        assert "keeping the running configuration" in caplog.text

        path.write_text(path.read_text().replace('["alpha"]', '["alpha", "beta"]'))
        path.write_text(path.read_text().replace("interval = -5\nbogus = 1", "interval = 900"))
        assert daemon.reload() is True
        assert {"alpha", "beta"} == set(daemon.platforms)
        jobs = {j.id: j.name for j in daemon.scheduler.get_jobs()}
        assert "beta every 900s jitter 300s" == jobs[PLATFORM_PREFIX + "beta"]
    finally:
        daemon.scheduler.shutdown(wait=False)


@pytest.mark.anyio
async def test_stop_abandons_the_run_in_flight(tmp_path, monkeypatch):
    """stop() cancels a run mid-measurement within a second and records it as abandoned."""
    monkeypatch.setattr("probe.daemon.scheduler.FIRST_RUN_WITHIN", 0.1)
    loaded = loaded_config(tmp_path, "alpha", interval=60.0)
    run = FakeRun(delay=30.0)
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    task = asyncio.create_task(daemon.serve())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if run.calls:
            break
    assert run.calls
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    daemon.stop()
    await asyncio.wait_for(task, 5.0)
    assert loop.time() - t0 < 1.0
    with State(tmp_path / "state") as state:
        assert "abandoned" == state.last_runs()["alpha"].outcome


def test_metered_config_copy_keeps_everything_else():
    """without_transfers changes only the two transfer sizes."""
    from probe.daemon.service import without_transfers

    config = make_config()
    copy = without_transfers(config)
    assert config.budget.run_bytes == copy.budget.run_bytes
    assert config.canaries == copy.canaries
    assert (0, 0) == (copy.budget.throughput_bytes, copy.budget.upload_bytes)


def test_fake_platform_helper_is_valid():
    """The fixture platforms parse (a guard for the tests above)."""
    assert "alpha" == platform("alpha", "big").name
    assert ThroughputObservation and Observations  # the fakes' types are importable


@pytest.mark.anyio
async def test_reload_applies_every_key_it_can_and_names_the_rest(tmp_path, caplog):
    """SIGHUP: logging, collector, budget and schedule take effect; state_dir needs a restart."""
    path = tmp_path / "probe.toml"
    pdir = tmp_path / "platforms"
    pdir.mkdir()
    (pdir / "alpha.toml").write_text(PLATFORMS_TOML.format(name="alpha"))
    head = 'builtin_platforms = false\nplatform_dirs = ["platforms"]\n'
    path.write_text(head + "[daemon]\ninterval = 600\n")
    relogged = []
    daemon = Daemon(
        load_files(path, env={}),
        tmp_path / "state",
        reload=lambda: load_files(path, env={}),
        relog=relogged.append,
    )
    daemon.scheduler.start(paused=True)
    try:
        from probe.daemon import scheduler

        scheduler.sync(daemon.scheduler, list(daemon.platforms), daemon.loaded.daemon)
        path.write_text(
            head + 'retries = 3\n[daemon]\ninterval = 600\nlog_format = "json"\n'
            'collector_url = "https://c.example"\ndaily_bytes = 1000\nmisfire_grace = 60\n'
            'state_dir = "elsewhere"\n'
        )
        caplog.set_level("INFO")
        assert daemon.reload() is True
        assert ["json"] == [c.daemon.log_format for c in relogged]
        d = daemon.loaded.daemon
        assert ("https://c.example", 1000) == (d.collector_url, d.daily_bytes)
        assert 3 == daemon.loaded.probe.retries
        assert d.state_dir is None  # still the one the daemon runs on
        job = daemon.scheduler.get_job(PLATFORM_PREFIX + "alpha")
        assert 60 == job.misfire_grace_time
        applied = next(r.message for r in caplog.records if "reloaded" in r.message)
        for key in ("daemon.log_format", "daemon.collector_url", "retries", "daemon.misfire_grace"):
            assert key in applied
        assert "daemon.state_dir" not in applied
        assert "daemon.state_dir changed in the configuration: needs a restart" in caplog.text
    finally:
        daemon.scheduler.shutdown()


@pytest.mark.anyio
async def test_an_interrupted_run_is_retried_soon_after_the_next_start(tmp_path, monkeypatch):
    """A run cut off by a stop (or a crash) runs again within RETRY_AFTER, not an interval on."""
    monkeypatch.setattr("probe.daemon.scheduler.FIRST_RUN_WITHIN", 0.1)
    loaded = loaded_config(tmp_path, "alpha", "beta", interval=3600.0)
    run = FakeRun(delay=30.0)
    daemon = Daemon(loaded, tmp_path / "state", run=run)
    task = asyncio.create_task(daemon.serve())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(run.calls) == 2:
            break
    daemon.stop()
    await asyncio.wait_for(task, 5.0)
    with State(tmp_path / "state") as state:
        state.record_run(state.last_runs()["beta"].model_copy(update={"outcome": "measured"}))
        state.mark_started("beta")  # as if the process had been killed in beta's next run
        state.record_run(state.last_runs()["alpha"])
    from probe.daemon import scheduler

    monkeypatch.setattr(scheduler, "RETRY_AFTER", (5.0, 6.0))
    again = Daemon(loaded, tmp_path / "state", run=FakeRun())
    task = asyncio.create_task(again.serve())
    await asyncio.sleep(0.3)
    soon = {job.id: job.next_run_time - datetime.now(UTC) for job in again.scheduler.get_jobs()}
    again.stop()
    await asyncio.wait_for(task, 5.0)
    assert timedelta(seconds=4) < soon[PLATFORM_PREFIX + "alpha"] < timedelta(seconds=6)
    assert timedelta(seconds=4) < soon[PLATFORM_PREFIX + "beta"] < timedelta(seconds=6)


@pytest.mark.anyio
async def test_metrics_are_served_on_loopback_and_follow_a_port_change(tmp_path, monkeypatch):
    """/metrics over a real socket: the status as Prometheus text; a reload moves the port."""
    from tests.probe.test_daemon_process import free_port

    monkeypatch.setattr("probe.daemon.scheduler.FIRST_RUN_WITHIN", 0.1)
    first, second = free_port(), free_port()
    loaded = loaded_config(tmp_path, "alpha", interval=3600.0, metrics_port=first)
    run = FakeRun()
    moved = dataclasses.replace(
        loaded, daemon=loaded.daemon.model_copy(update={"metrics_port": second})
    )
    daemon = Daemon(loaded, tmp_path / "state", run=run, reload=lambda: moved)
    task = asyncio.create_task(daemon.serve())
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            for _ in range(400):
                await asyncio.sleep(0.05)
                with State(tmp_path / "state") as state:
                    if "alpha" in state.last_runs():
                        break
            response = await client.get(f"http://127.0.0.1:{first}/metrics")
            assert 200 == response.status_code
            assert response.headers["content-type"].startswith("text/plain")
            text = response.text
            assert "# TYPE blockprobe_outbox_dropped_total counter" in text
            assert "# TYPE blockprobe_data_daily_cap_bytes gauge" in text
            assert 'blockprobe_platform_verdict{platform="alpha",verdict=' in text
            assert daemon.reload() is True
            for _ in range(100):
                await asyncio.sleep(0.05)
                if daemon._metrics is not None and daemon._metrics.port == second:
                    break
            response = await client.get(f"http://127.0.0.1:{second}/metrics")
            assert "blockprobe_runs_today 1.0" in response.text
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{first}/metrics")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10.0)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{second}/metrics")
