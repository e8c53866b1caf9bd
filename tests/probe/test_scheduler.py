"""The APScheduler wiring: persisted jobs, kept schedules, coalesced misfires, cron and jitter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError

from probe.daemon import scheduler
from probe.daemon.settings import DaemonConfig


class Recorder:
    """A runner that records which jobs ran."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.drains = 0

    async def run_platform(self, name: str) -> None:
        self.runs.append(name)

    async def drain(self) -> None:
        self.drains += 1


@pytest.fixture
def recorder():
    runner = Recorder()
    scheduler.bind(runner)
    yield runner
    scheduler.bind(None)


async def until(condition: Callable[[], object]) -> None:
    """Wait for ``condition`` (up to 30 s, however loaded the machine)."""
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


def started(state: Path, config: DaemonConfig):
    s = scheduler.make_scheduler(state, config)
    s.start(paused=True)
    return s


@pytest.mark.anyio
async def test_a_restart_keeps_each_platforms_next_run_time(tmp_path, recorder):
    """Next run times survive a restart; unchanged jobs are kept as stored."""
    config = DaemonConfig(interval=3600, jitter=600)
    first = started(tmp_path, config)
    report = scheduler.sync(first, ["alpha", "beta"], config)
    assert ("platform:alpha", "platform:beta", "upload") == tuple(sorted(report.added))
    before = {j.id: j.next_run_time for j in first.get_jobs()}
    first.shutdown(wait=False)
    assert before == scheduler.next_runs(tmp_path)

    second = started(tmp_path, config)
    report = scheduler.sync(second, ["alpha", "beta"], config)
    assert set(report.kept) == set(before) and not report.added and not report.replaced
    assert before == {j.id: j.next_run_time for j in second.get_jobs()}
    second.shutdown(wait=False)


@pytest.mark.anyio
async def test_a_changed_schedule_is_replaced_and_a_dropped_platform_removed(tmp_path, recorder):
    """sync replaces the job whose schedule changed and removes platforms no longer configured."""
    s = started(tmp_path, DaemonConfig(interval=3600))
    scheduler.sync(s, ["alpha", "beta"], DaemonConfig(interval=3600))
    new = DaemonConfig(interval=3600, schedule={"alpha": "*/20 * * * *"})
    report = scheduler.sync(s, ["alpha"], new)
    assert ("platform:alpha",) == report.replaced
    assert ("platform:beta",) == report.removed
    job = s.get_job("platform:alpha")
    assert isinstance(job.trigger, CronTrigger)
    assert job.next_run_time.minute % 20 == 0 or job.trigger.jitter
    s.shutdown(wait=False)


@pytest.mark.anyio
async def test_new_jobs_first_run_within_a_minute_spread_by_jitter(tmp_path, recorder):
    """New platform jobs start within the first minute, not all at once."""
    s = started(tmp_path, DaemonConfig(interval=3600))
    names = [f"p{i}" for i in range(8)]
    before = datetime.now(UTC)
    scheduler.sync(s, names, DaemonConfig(interval=3600))
    after = datetime.now(UTC)
    firsts = [s.get_job(f"platform:{n}").next_run_time for n in names]
    assert all(before <= f <= after + timedelta(seconds=60) for f in firsts)
    assert len(set(firsts)) == len(firsts)
    s.shutdown(wait=False)


@pytest.mark.anyio
async def test_a_run_missed_beyond_the_grace_time_is_skipped_not_caught_up(tmp_path, recorder):
    """A run whose latest missed slot is older than the grace time is dropped, not caught up."""
    config = DaemonConfig(interval=60, jitter=0, misfire_grace=30)
    s = started(tmp_path, config)
    scheduler.sync(s, ["alpha"], config)
    # slots every 60 s from 5 h 45 s ago: the latest missed one is 45 s old, beyond the grace
    late = datetime.now(UTC) - timedelta(hours=5, seconds=45)
    s.modify_job("platform:alpha", next_run_time=late)
    s.shutdown(wait=False)

    again = started(tmp_path, config)
    scheduler.sync(again, ["alpha"], config)
    again.resume()
    await asyncio.sleep(0.5)
    assert [] == recorder.runs
    assert again.get_job("platform:alpha").next_run_time > datetime.now(UTC)
    again.shutdown(wait=False)


@pytest.mark.anyio
async def test_many_missed_runs_coalesce_into_one_after_a_restart(tmp_path, recorder):
    """Five hours of missed 10 s slots (a long stop or a suspend) give one run, not a burst."""
    config = DaemonConfig(interval=10, jitter=0, misfire_grace=600)
    first = started(tmp_path, config)
    scheduler.sync(first, ["alpha"], config)
    first.modify_job("platform:alpha", next_run_time=datetime.now(UTC) - timedelta(hours=5))
    first.shutdown(wait=False)
    s = started(tmp_path, config)
    assert ("platform:alpha", "upload") == tuple(sorted(scheduler.sync(s, ["alpha"], config).kept))
    s.resume()
    await until(lambda: recorder.runs)
    await asyncio.sleep(0.5)  # a burst of catch-up runs would come now
    assert ["alpha"] == recorder.runs
    s.shutdown(wait=False)


@pytest.mark.anyio
async def test_a_seconds_long_interval_fires_repeatedly(tmp_path, recorder, monkeypatch):
    """A 1 s interval runs the job about once a second; the upload job runs too."""
    monkeypatch.setattr(scheduler, "FIRST_RUN_WITHIN", 0.2)
    config = DaemonConfig(interval=1, jitter=0, upload_interval=1)
    s = started(tmp_path, config)
    scheduler.sync(s, ["alpha"], config)
    s.resume()
    await until(lambda: len(recorder.runs) >= 3 and recorder.drains >= 2)
    job = s.get_job("platform:alpha")
    s.shutdown(wait=False)
    assert 1 == job.trigger.interval_length  # one run a second, not a burst


def test_triggers_carry_the_interval_cron_and_jitter():
    """Intervals become IntervalTrigger, crontab strings CronTrigger, both with jitter."""
    interval = scheduler.trigger_for(1800.0, 300.0)
    assert isinstance(interval, IntervalTrigger)
    assert (1800, 300) == (interval.interval_length, interval.jitter)
    cron = scheduler.trigger_for("15 */6 * * *", 60.0)
    assert isinstance(cron, CronTrigger) and 60 == cron.jitter
    now = datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    assert datetime(2026, 1, 1, 12, 15, tzinfo=UTC) == CronTrigger(
        minute="15", hour="*/6", timezone=UTC
    ).get_next_fire_time(None, now)
    assert "every 1800s jitter 300s" == scheduler.describe(1800.0, 300.0)
    assert "cron '15 */6 * * *' jitter 0s" == scheduler.describe("15 */6 * * *", 0.0)


def test_a_bad_crontab_or_interval_is_refused():
    """The [daemon] schedule accepts seconds or a five-field crontab, nothing else."""
    with pytest.raises(ValidationError, match="crontab"):
        DaemonConfig(schedule={"x": "every half hour"})
    with pytest.raises(ValidationError):
        DaemonConfig(interval=0.5)
    assert "*/30 * * * *" == DaemonConfig(schedule={"x": "*/30 * * * *"}).when("x")
    assert 1800.0 == DaemonConfig().when("x")


def test_next_runs_of_a_state_dir_without_jobs_is_empty(tmp_path):
    """status on a fresh state directory sees no jobs."""
    assert {} == scheduler.next_runs(tmp_path)


class SlowRunner(Recorder):
    """A runner whose runs last a minute and take a moment to record that they were stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.abandoned: list[str] = []

    async def run_platform(self, name: str) -> None:
        self.runs.append(name)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)
            self.abandoned.append(name)
            raise


@pytest.mark.anyio
async def test_stop_waits_for_the_cancelled_run_to_record_its_end(tmp_path, monkeypatch):
    """When stop returns, the run in flight was cancelled and has finished recording it."""
    monkeypatch.setattr(scheduler, "FIRST_RUN_WITHIN", 0.0)
    runner = SlowRunner()
    scheduler.bind(runner)
    try:
        config = DaemonConfig(interval=60, jitter=0)
        s = started(tmp_path, config)
        scheduler.sync(s, ["alpha"], config)
        s.resume()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if runner.runs:
                break
        await s.stop(grace=5.0)
        assert (["alpha"], ["alpha"]) == (runner.runs, runner.abandoned)
    finally:
        scheduler.bind(None)


@pytest.mark.anyio
async def test_a_stopped_scheduler_never_wakes_up_again(tmp_path, recorder, monkeypatch):
    """A wake-up that arrives after stop runs no job and arms no timer."""
    monkeypatch.setattr(scheduler, "FIRST_RUN_WITHIN", 0.0)
    config = DaemonConfig(interval=60, jitter=0)
    s = started(tmp_path, config)
    scheduler.sync(s, ["alpha"], config)  # due now, but paused
    await s.stop(grace=1.0)
    s.wakeup()
    await asyncio.sleep(0.2)
    assert ([], 0) == (recorder.runs, recorder.drains)
    assert s._timeout is None
