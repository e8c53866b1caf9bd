"""The sqlite3 job store keeps APScheduler jobs as its SQLAlchemy store does, in the same table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from probe.daemon.jobstore import SQLiteJobStore

NOW = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)  # nothing comes due


def job_function(name: str) -> None:  # pragma: no cover - never run, only stored
    """A module-level function: what a stored job refers to."""


def add_jobs(scheduler: BackgroundScheduler) -> None:
    for i, name in enumerate(("alpha", "beta")):
        scheduler.add_job(
            job_function,
            IntervalTrigger(seconds=600, timezone=UTC),
            args=(name,),
            id=f"platform:{name}",
            next_run_time=NOW + timedelta(minutes=i + 1),
        )


def scheduler_on(store: object) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


def test_jobs_persist_in_order_and_are_updated_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "schedule.sqlite3"
    scheduler = scheduler_on(SQLiteJobStore(path))
    add_jobs(scheduler)
    with pytest.raises(ConflictingIdError):
        add_jobs(scheduler)
    scheduler.shutdown(wait=False)

    store = SQLiteJobStore(path)
    scheduler = scheduler_on(store)
    assert ["platform:alpha", "platform:beta"] == [j.id for j in store.get_all_jobs()]
    assert NOW + timedelta(minutes=1) == store.get_next_run_time()
    assert ["platform:alpha"] == [j.id for j in store.get_due_jobs(NOW + timedelta(seconds=90))]
    assert ("beta",) == store.lookup_job("platform:beta").args
    scheduler.modify_job("platform:alpha", next_run_time=NOW + timedelta(minutes=5))
    assert ["platform:beta", "platform:alpha"] == [j.id for j in store.get_all_jobs()]
    store.remove_job("platform:beta")
    with pytest.raises(JobLookupError):
        store.remove_job("platform:beta")
    assert store.lookup_job("platform:beta") is None
    scheduler.shutdown(wait=False)


def test_a_schedule_written_by_the_sqlalchemy_store_is_read(tmp_path: Path) -> None:
    path = tmp_path / "schedule.sqlite3"
    scheduler = scheduler_on(SQLAlchemyJobStore(url=f"sqlite:///{path}"))
    add_jobs(scheduler)
    scheduler.shutdown(wait=False)

    store = SQLiteJobStore(path)
    scheduler = scheduler_on(store)
    jobs = store.get_all_jobs()
    assert [("platform:alpha", ("alpha",)), ("platform:beta", ("beta",))] == [
        (j.id, j.args) for j in jobs
    ]
    assert NOW + timedelta(minutes=1) == jobs[0].next_run_time
    scheduler.shutdown(wait=False)
