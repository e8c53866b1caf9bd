"""APScheduler wiring: one job per platform, one job draining the outbox, persisted in SQLite.

Jobs live in ``<state>/schedule.sqlite3`` (``probe.daemon.jobstore``), so a restart
keeps each platform's next run time. ``sync`` reconciles the stored jobs with the configuration:
a job whose schedule is unchanged is kept as stored, a changed one is replaced, a platform no
longer configured loses its job. Missed runs are coalesced into one and skipped altogether when
later than ``misfire_grace`` (after a suspend or a long stop), so there is never a burst of
catch-up runs. Stored jobs refer to the module-level ``platform_job``/``upload_job``, which call
the ``Runner`` bound with ``bind``.

``ProbeScheduler`` stops for good when ``stop`` returns: APScheduler's own asyncio scheduler
defers its shutdown to a later turn of the loop and keeps waking up after it, so a timer or a
job could fire after the daemon had closed its stores (or after the loop was gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from probe.daemon.jobstore import SQLiteJobStore
from probe.daemon.settings import DaemonConfig

JOBS_FILE = "schedule.sqlite3"
JOBS_TABLE = "apscheduler_jobs"
UPLOAD_JOB = "upload"
PLATFORM_PREFIX = "platform:"
FIRST_RUN_WITHIN = 60.0  # a new platform job first runs within this many seconds
RETRY_AFTER = (20.0, 90.0)  # an interrupted run is tried again this many seconds later (random)


class Runner(Protocol):
    """What the jobs call: the daemon."""

    async def run_platform(self, name: str) -> object: ...

    async def drain(self) -> object: ...


_runner: Runner | None = None


def bind(runner: Runner | None) -> None:
    """Make ``runner`` the target of the stored jobs (None unbinds)."""
    global _runner
    _runner = runner


def _bound() -> Runner:
    if _runner is None:
        raise RuntimeError("no daemon is bound to the scheduler")
    return _runner


async def platform_job(name: str) -> None:
    """The stored job of one platform (cancelled at shutdown: the run is abandoned quietly)."""
    with contextlib.suppress(asyncio.CancelledError):
        await _bound().run_platform(name)


async def upload_job() -> None:
    """The stored job that drains the outbox."""
    with contextlib.suppress(asyncio.CancelledError):
        await _bound().drain()


class JobExecutor(AsyncIOExecutor):  # type: ignore[misc]  # APScheduler is untyped
    """Runs the coroutine jobs as tasks on the loop and lets ``ProbeScheduler`` wait for them."""

    def in_flight(self) -> list[asyncio.Future[object]]:
        """The job tasks not finished yet."""
        pending: set[asyncio.Future[object]] = getattr(self, "_pending_futures", set())
        return [f for f in pending if not f.done()]


class ProbeScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler is untyped
    """An asyncio scheduler whose ``stop`` is complete on return: no timer, no job, no wake-up.

    Must be used from the loop it was started on (the daemon never calls it from a thread).
    """

    def _create_default_executor(self) -> JobExecutor:
        return JobExecutor()

    async def stop(self, grace: float) -> None:
        """Stop scheduling, cancel the jobs in flight and wait up to ``grace`` s for them to end.

        A cancelled job finishes what must not be cut in half (an upload whose answer is on the
        way) before it ends; see ``probe.evidence.upload``.
        """
        if self.state == STATE_STOPPED:
            return
        executor = self._lookup_executor("default")
        jobs = executor.in_flight() if isinstance(executor, JobExecutor) else []
        BaseScheduler.shutdown(self, wait=False)  # cancels the jobs, closes the job store
        self._stop_timer()
        if jobs:
            await asyncio.wait(jobs, timeout=grace)

    def shutdown(self, wait: bool = True) -> None:
        """Stop at once (jobs in flight are cancelled, not awaited; ``stop`` awaits them)."""
        if self.state == STATE_STOPPED:
            return
        BaseScheduler.shutdown(self, wait=False)
        self._stop_timer()

    def wakeup(self) -> None:
        """Look for due jobs on the next turn of the loop, unless stopped by then."""
        loop = self._eventloop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self.state == STATE_STOPPED:
            return
        self._stop_timer()
        self._start_timer(self._process_jobs())


def make_scheduler(state_dir: Path, config: DaemonConfig) -> ProbeScheduler:
    """A scheduler on the job store in ``state_dir``, with coalescing and a misfire grace."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = SQLiteJobStore(state_dir / JOBS_FILE, JOBS_TABLE)
    return ProbeScheduler(
        jobstores={"default": store},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(config.misfire_grace),
        },
        timezone=UTC,
    )


def describe(when: float | str, jitter: float) -> str:
    """A schedule as stored in the job's name: equal names mean an unchanged schedule."""
    base = f"every {when:g}s" if isinstance(when, float | int) else f"cron '{when}'"
    return f"{base} jitter {jitter:g}s"


def trigger_for(when: float | str, jitter: float) -> BaseTrigger:
    """An interval trigger (seconds) or a crontab trigger, each with random jitter."""
    jitter_s = int(round(jitter)) or None
    if isinstance(when, str):
        return CronTrigger(**_cron_fields(when), jitter=jitter_s, timezone=UTC)
    return IntervalTrigger(seconds=when, jitter=jitter_s, timezone=UTC)


def _cron_fields(expr: str) -> dict[str, str]:
    minute, hour, day, month, day_of_week = expr.split()
    return {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": day_of_week,
    }


@dataclass(frozen=True)
class SyncReport:
    """What ``sync`` did to the stored jobs."""

    kept: tuple[str, ...]
    added: tuple[str, ...]
    replaced: tuple[str, ...]
    removed: tuple[str, ...]


def sync(
    scheduler: AsyncIOScheduler,
    platforms: Iterable[str],
    config: DaemonConfig,
    *,
    rng: random.Random | None = None,
) -> SyncReport:
    """Make the stored jobs match ``platforms`` and ``config``; keep unchanged ones as stored."""
    rng = rng or random.Random()
    now = datetime.now(UTC)
    wanted: dict[str, tuple[str, BaseTrigger, str, tuple[str, ...]]] = {}
    for name in platforms:
        when = config.when(name)
        spec = f"{name} {describe(when, config.jitter)}"
        wanted[PLATFORM_PREFIX + name] = (
            spec,
            trigger_for(when, config.jitter),
            f"{__name__}:platform_job",
            (name,),
        )
    upload_spec = f"upload {describe(config.upload_interval, 0.0)}"
    wanted[UPLOAD_JOB] = (
        upload_spec,
        trigger_for(config.upload_interval, 0.0),
        f"{__name__}:upload_job",
        (),
    )
    existing = {job.id: job for job in scheduler.get_jobs()}
    kept: list[str] = []
    added: list[str] = []
    replaced: list[str] = []
    for job_id, (spec, trigger, func, args) in wanted.items():
        job = existing.get(job_id)
        if job is not None and job.name == spec and job.func_ref == func:
            if job.misfire_grace_time != int(config.misfire_grace):
                job.modify(misfire_grace_time=int(config.misfire_grace))
            kept.append(job_id)
            continue
        first = _first_run(now, trigger, rng, upload=job_id == UPLOAD_JOB)
        scheduler.add_job(
            func,
            trigger,
            args=args,
            id=job_id,
            name=spec,
            replace_existing=True,
            next_run_time=first,
            misfire_grace_time=int(config.misfire_grace),
            coalesce=True,
            max_instances=1,
        )
        (replaced if job is not None else added).append(job_id)
    removed = [job_id for job_id in existing if job_id not in wanted]
    for job_id in removed:
        scheduler.remove_job(job_id)
    return SyncReport(tuple(kept), tuple(added), tuple(replaced), tuple(removed))


def retry_soon(
    scheduler: AsyncIOScheduler, platforms: Iterable[str], *, rng: random.Random | None = None
) -> dict[str, datetime]:
    """Bring the next run of ``platforms`` forward to within ``RETRY_AFTER`` seconds, jittered.

    For runs a stop or a crash interrupted: the stored job already points a whole interval on.
    Returns the platforms moved and their new next run time.
    """
    rng = rng or random.Random()
    now = datetime.now(UTC)
    moved = {}
    for name in platforms:
        job = scheduler.get_job(PLATFORM_PREFIX + name)
        if job is None:
            continue
        soon = now + timedelta(seconds=rng.uniform(*RETRY_AFTER))
        current = job_next_run(job)
        if current is None or current > soon:
            job.modify(next_run_time=soon)
            moved[name] = soon
    return moved


def _first_run(
    now: datetime, trigger: BaseTrigger, rng: random.Random, *, upload: bool
) -> datetime | None:
    """Spread new interval jobs over the first minute (or interval); cron jobs follow the cron."""
    if isinstance(trigger, IntervalTrigger):
        span = min(FIRST_RUN_WITHIN, trigger.interval_length)
        delay = span if upload else rng.uniform(0.0, span)
        return now + timedelta(seconds=delay)
    first = trigger.get_next_fire_time(None, now)
    return first if isinstance(first, datetime) else None


def next_runs(state_dir: Path) -> dict[str, datetime | None]:
    """Each stored job's next run time (None: paused), read without starting a scheduler."""
    path = state_dir / JOBS_FILE
    if not path.is_file():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(f"SELECT id, next_run_time FROM {JOBS_TABLE}").fetchall()
    except sqlite3.Error:
        return {}
    return {
        str(job_id): (datetime.fromtimestamp(ts, UTC) if ts is not None else None)
        for job_id, ts in rows
    }


def job_next_run(job: Job) -> datetime | None:
    """A live job's next run time."""
    value = job.next_run_time
    return value if isinstance(value, datetime) else None
