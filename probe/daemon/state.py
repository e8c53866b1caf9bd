"""The daemon's durable state: where it lives, last run per platform, the day's data counter.

The state directory holds the keys, the outbox, the scheduler's job store and ``state.sqlite3``
(this module): the last run of each platform, bytes used per local day, the last contact with
the collector, the keys enrolled there, and the running daemon's own record (pid, the figures it
uses). Every command finds it by one rule (``choose_state_dir``): ``--state-dir``, else
``[daemon] state_dir`` (``$BLOCKPROBE_STATE_DIR`` sets it too), else systemd's
``$STATE_DIRECTORY``, else ``/var/lib/blockprobe`` for root, else ``$XDG_STATE_HOME/blockprobe``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from probe.model.base import FrozenModel

SYSTEM_STATE = Path("/var/lib/blockprobe")
STATE_FILE = "state.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (platform TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT PRIMARY KEY,
    measured_bytes INTEGER NOT NULL DEFAULT 0,
    upload_bytes INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS in_flight (platform TEXT PRIMARY KEY, started_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS enrolled (
    key_id TEXT NOT NULL, collector TEXT NOT NULL, enrolled_at TEXT NOT NULL,
    PRIMARY KEY (key_id, collector)
);
"""


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where state lives when neither an option nor the configuration says."""
    return _default_state_dir(os.environ if env is None else env)[0]


def _default_state_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    if env.get("STATE_DIRECTORY"):  # systemd's StateDirectory=
        return Path(env["STATE_DIRECTORY"].split(":")[0]), "systemd's $STATE_DIRECTORY"
    if os.geteuid() == 0:
        return SYSTEM_STATE, "the system's default, running as root"
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(base) / "blockprobe", "the user's default"


def choose_state_dir(
    option: Path | None,
    configured: Path | None,
    *,
    set_by: str | None = None,
    source: str = "the configuration",
    env: Mapping[str, str] | None = None,
) -> tuple[Path, str]:
    """The state directory and why: ``option``, else ``configured`` (from ``source``, or from
    the variable ``set_by``), else the default for this user."""
    if option is not None:
        return option, "given with --state-dir"
    if configured is not None:
        return configured, f"set by ${set_by}" if set_by else f"[daemon] state_dir in {source}"
    return _default_state_dir(os.environ if env is None else env)


class EndpointVerdict(FrozenModel):
    """One endpoint's verdict in a run."""

    target: str
    verdict: str
    method: str | None = None


class RunRecord(FrozenModel):
    """What the last scheduled run of a platform did."""

    platform: str
    started_at: datetime
    finished_at: datetime
    outcome: Literal["measured", "skipped", "failed", "abandoned"]
    reason: str | None = None  # why it was skipped or failed
    verdict: str | None = None  # the platform summary
    method: str | None = None
    partial: bool = False
    endpoints: tuple[EndpointVerdict, ...] = ()
    bytes_used: int = 0
    budget_bytes: int = 0  # the cap this run had
    throughput: bool = True  # whether throughput/upload transfers were allowed
    transfers_skipped: int = 0  # transfers not started for lack of budget
    bundle_digest: str | None = None
    bundle_bytes: int = 0


class DayUsage(FrozenModel):
    """Data used on one local day."""

    day: date
    measured_bytes: int = 0
    upload_bytes: int = 0
    runs: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.measured_bytes + self.upload_bytes


class Contact(FrozenModel):
    """The last time the daemon tried the collector."""

    at: datetime
    ok: bool
    detail: str


class DaemonRecord(FrozenModel):
    """The running (or last) daemon: who, since when, with which figures."""

    pid: int
    started_at: datetime
    version: str
    config_source: str
    cap_net_raw: bool
    metered: bool
    run_bytes: int
    daily_bytes: int
    collector_url: str | None
    schedules: dict[str, str] = Field(default_factory=dict)
    reloaded_at: datetime | None = None
    stopped_at: datetime | None = None


class State:
    """``state.sqlite3`` in a state directory."""

    def __init__(self, state_dir: Path, *, today: Callable[[], date] = date.today) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = state_dir / STATE_FILE
        self.today = today
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self.path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mark_started(self, platform: str) -> None:
        """A run of ``platform`` began; ``record_run`` ends it (left over: the run was cut off)."""
        self._db.execute(
            "INSERT OR REPLACE INTO in_flight (platform, started_at) VALUES (?, ?)",
            (platform, datetime.now(UTC).isoformat()),
        )

    def record_run(self, record: RunRecord) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO runs (platform, record) VALUES (?, ?)",
                (record.platform, record.model_dump_json()),
            )
            self._db.execute("DELETE FROM in_flight WHERE platform = ?", (record.platform,))

    def interrupted(self) -> set[str]:
        """Platforms whose last run did not end: abandoned at a stop, or cut off (a crash)."""
        rows = self._db.execute("SELECT platform FROM in_flight").fetchall()
        cut = {str(r[0]) for r in rows}
        return cut | {p for p, r in self.last_runs().items() if r.outcome == "abandoned"}

    def last_runs(self) -> dict[str, RunRecord]:
        rows = self._db.execute("SELECT platform, record FROM runs ORDER BY platform").fetchall()
        return {p: RunRecord.model_validate_json(r) for p, r in rows}

    def add_usage(
        self, *, measured: int = 0, upload: int = 0, runs: int = 0, skipped: int = 0
    ) -> DayUsage:
        """Count data and runs against today; returns today's totals."""
        day = self.today().isoformat()
        self._db.execute(
            "INSERT INTO usage (day, measured_bytes, upload_bytes, runs, skipped)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET"
            " measured_bytes = measured_bytes + excluded.measured_bytes,"
            " upload_bytes = upload_bytes + excluded.upload_bytes,"
            " runs = runs + excluded.runs, skipped = skipped + excluded.skipped",
            (day, measured, upload, runs, skipped),
        )
        self._db.execute("DELETE FROM usage WHERE day < date(?, '-90 days')", (day,))
        return self.usage()

    def usage(self, day: date | None = None) -> DayUsage:
        """Data used on ``day`` (today by default)."""
        day = day or self.today()
        row = self._db.execute(
            "SELECT measured_bytes, upload_bytes, runs, skipped FROM usage WHERE day = ?",
            (day.isoformat(),),
        ).fetchone()
        if row is None:
            return DayUsage(day=day)
        return DayUsage(
            day=day, measured_bytes=row[0], upload_bytes=row[1], runs=row[2], skipped=row[3]
        )

    def _put(self, name: str, record: BaseModel) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records (name, value) VALUES (?, ?)",
            (name, record.model_dump_json()),
        )

    def _get(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM records WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def record_contact(self, ok: bool, detail: str) -> None:
        self._put("contact", Contact(at=datetime.now(UTC), ok=ok, detail=detail[:300]))

    def contact(self) -> Contact | None:
        value = self._get("contact")
        return Contact.model_validate_json(value) if value else None

    def record_daemon(self, record: DaemonRecord) -> None:
        self._put("daemon", record)

    def daemon(self) -> DaemonRecord | None:
        value = self._get("daemon")
        return DaemonRecord.model_validate_json(value) if value else None

    def mark_enrolled(self, key_id: str, collector: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO enrolled (key_id, collector, enrolled_at) VALUES (?, ?, ?)",
            (key_id, collector, datetime.now(UTC).isoformat()),
        )

    def is_enrolled(self, key_id: str, collector: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM enrolled WHERE key_id = ? AND collector = ?", (key_id, collector)
        ).fetchone()
        return row is not None
