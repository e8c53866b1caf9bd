"""APScheduler's job store on ``sqlite3``: the SQLAlchemy store's table, without SQLAlchemy.

The same table as ``apscheduler.jobstores.sqlalchemy`` (``id``, ``next_run_time`` as a UTC
timestamp, ``job_state`` pickled), so a schedule file written by either is read by the other; but
loading SQLAlchemy only to keep a dozen rows would cost the idle daemon about 20 MiB.
"""

from __future__ import annotations

import pickle
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime


class SQLiteJobStore(BaseJobStore):  # type: ignore[misc]  # APScheduler is untyped
    """Jobs in table ``table`` of the SQLite file ``path`` (created when missing)."""

    def __init__(self, path: Path, table: str = "apscheduler_jobs") -> None:
        super().__init__()
        if not table.isidentifier():
            raise ValueError(f"{table!r} is not a table name")
        self.path = path
        self.table = table
        self._db: sqlite3.Connection | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id VARCHAR(191) NOT NULL PRIMARY KEY,"
            " next_run_time FLOAT, job_state BLOB NOT NULL)"
        )
        self._db.execute(
            f"CREATE INDEX IF NOT EXISTS ix_{self.table}_next_run_time"
            f" ON {self.table} (next_run_time)"
        )

    def shutdown(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the job store is not started")
        return self._db

    def lookup_job(self, job_id: str) -> Job | None:
        row = self.db.execute(
            f"SELECT job_state FROM {self.table} WHERE id = ?", (job_id,)
        ).fetchone()
        return self._reconstitute(row[0]) if row else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return self._jobs("WHERE next_run_time <= ?", (datetime_to_utc_timestamp(now),))

    def get_next_run_time(self) -> datetime | None:
        row = self.db.execute(
            f"SELECT next_run_time FROM {self.table} WHERE next_run_time IS NOT NULL"
            " ORDER BY next_run_time LIMIT 1"
        ).fetchone()
        return utc_timestamp_to_datetime(row[0]) if row else None

    def get_all_jobs(self) -> list[Job]:
        jobs = self._jobs()
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    def add_job(self, job: Job) -> None:
        try:
            self.db.execute(
                f"INSERT INTO {self.table} (id, next_run_time, job_state) VALUES (?, ?, ?)",
                (job.id, datetime_to_utc_timestamp(job.next_run_time), self._state(job)),
            )
        except sqlite3.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        cursor = self.db.execute(
            f"UPDATE {self.table} SET next_run_time = ?, job_state = ? WHERE id = ?",
            (datetime_to_utc_timestamp(job.next_run_time), self._state(job), job.id),
        )
        if cursor.rowcount == 0:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        cursor = self.db.execute(f"DELETE FROM {self.table} WHERE id = ?", (job_id,))
        if cursor.rowcount == 0:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self.db.execute(f"DELETE FROM {self.table}")

    @staticmethod
    def _state(job: Job) -> bytes:
        return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)

    def _reconstitute(self, state: bytes) -> Job:
        job_state = pickle.loads(state)
        job_state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(job_state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", params: tuple[float, ...] = ()) -> list[Job]:
        rows = self.db.execute(
            f"SELECT id, job_state FROM {self.table} {where} ORDER BY next_run_time", params
        ).fetchall()
        jobs, failed = [], []
        for job_id, state in rows:
            try:
                jobs.append(self._reconstitute(state))
            except Exception:
                self._logger.exception('Unable to restore job "%s" -- removing it', job_id)
                failed.append(job_id)
        for job_id in failed:
            self.db.execute(f"DELETE FROM {self.table} WHERE id = ?", (job_id,))
        return jobs

    def __repr__(self) -> str:
        return f"<SQLiteJobStore ({self.path})>"
