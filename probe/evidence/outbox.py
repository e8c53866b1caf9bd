"""The outbox: a durable SQLite queue of sealed bundles waiting to be uploaded.

Every ``put`` is committed (WAL, ``synchronous=FULL``) before it returns, so a bundle that was put
survives kill -9 and power loss. Items are keyed by digest (putting one twice is a no-op), retried
with exponential backoff and jitter, never expire, and are bounded in number: beyond ``max_items``
the oldest are dropped and the drops counted. Bundles the collector refuses for good go to a
dead-letter table with the reason.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    envelope BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS items_due ON items (next_attempt_at);
CREATE TABLE IF NOT EXISTS dead (
    digest TEXT PRIMARY KEY,
    envelope BLOB NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxItem:
    """One bundle waiting for upload."""

    digest: str
    envelope: bytes
    created_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class OutboxStats:
    """What the outbox holds and what it had to give up."""

    pending: int
    due: int
    dead: int
    dropped: int  # bundles dropped (oldest first) because the outbox was full
    oldest_created_at: float | None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random."""

    base: float = 30.0
    cap: float = 6 * 3600.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        full = min(self.cap, self.base * 2.0 ** max(0, attempts - 1))
        return full / 2 + rng.uniform(0, full / 2)


# The outbox's file in a state directory (the daemon, ``run --upload`` and ``upload`` share it).
OUTBOX_FILE = "outbox.sqlite3"


class Outbox:
    """A bounded, durable, idempotent upload queue in ``path`` (an SQLite file)."""

    def __init__(
        self,
        path: Path,
        *,
        max_items: int = 10_000,
        max_dead: int = 1_000,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.max_items = max_items
        self.max_dead = max_dead
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.rng = rng or random.Random()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, digest: str, envelope: bytes) -> bool:
        """Queue a bundle, due now; False if that digest is already queued. Durable on return."""
        now = self.clock()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO items (digest, envelope, created_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?)",
                (digest, envelope, now, now),
            )
            if cur.rowcount == 0:
                return False
            (count,) = db.execute("SELECT count(*) FROM items").fetchone()
            excess = count - self.max_items
            if excess > 0:
                db.execute(
                    "DELETE FROM items WHERE seq IN (SELECT seq FROM items ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._count(db, "dropped", excess)
        return True

    def due(self, limit: int = 100) -> list[OutboxItem]:
        """Items whose next attempt is due, oldest first."""
        rows = self._db.execute(
            "SELECT digest, envelope, created_at, attempts, next_attempt_at, last_error"
            " FROM items WHERE next_attempt_at <= ? ORDER BY seq LIMIT ?",
            (self.clock(), limit),
        ).fetchall()
        return [OutboxItem(*row) for row in rows]

    def get(self, digest: str) -> OutboxItem | None:
        row = self._db.execute(
            "SELECT digest, envelope, created_at, attempts, next_attempt_at, last_error"
            " FROM items WHERE digest = ?",
            (digest,),
        ).fetchone()
        return OutboxItem(*row) if row else None

    def remove(self, digest: str) -> None:
        """Forget a bundle the collector has acknowledged."""
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE digest = ?", (digest,))

    def defer(self, digest: str, error: str, retry_after: float | None = None) -> float:
        """Count a failed attempt and schedule the next; returns the delay in seconds.

        ``retry_after`` (the server's Retry-After, in seconds) replaces the backoff delay.
        """
        with self._transaction() as db:
            row = db.execute("SELECT attempts FROM items WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                return 0.0
            attempts = row[0] + 1
            delay = self.backoff.delay(attempts, self.rng)
            if retry_after is not None:
                delay = max(1.0, retry_after)
            db.execute(
                "UPDATE items SET attempts = ?, next_attempt_at = ?, last_error = ?"
                " WHERE digest = ?",
                (attempts, self.clock() + delay, error[:500], digest),
            )
        return delay

    def dead_letter(self, digest: str, reason: str, status: int | None = None) -> None:
        """Move a bundle the collector refused for good to the dead-letter table."""
        with self._transaction() as db:
            row = db.execute("SELECT envelope FROM items WHERE digest = ?", (digest,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM items WHERE digest = ?", (digest,))
            db.execute(
                "INSERT OR REPLACE INTO dead (digest, envelope, status, reason, failed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (digest, row[0], status, reason[:2000], self.clock()),
            )
            db.execute(
                "DELETE FROM dead WHERE digest NOT IN"
                " (SELECT digest FROM dead ORDER BY failed_at DESC LIMIT ?)",
                (self.max_dead,),
            )

    def requeue_dead(self, status: int | None = None) -> int:
        """Move dead letters (those with ``status``, or all) back to the queue, due now.

        For refusals that a later action can cure, such as 401 before the key was enrolled.
        """
        where, args = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        with self._transaction() as db:
            rows = db.execute(f"SELECT digest, envelope FROM dead {where}", args).fetchall()
            now = self.clock()
            for digest, envelope in rows:
                db.execute(
                    "INSERT OR IGNORE INTO items (digest, envelope, created_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?)",
                    (digest, envelope, now, now),
                )
            db.execute(f"DELETE FROM dead {where}", args)
        return len(rows)

    def dead_letters(self) -> list[tuple[str, int | None, str]]:
        """(digest, HTTP status, reason) of every dead letter, newest first."""
        rows = self._db.execute(
            "SELECT digest, status, reason FROM dead ORDER BY failed_at DESC"
        ).fetchall()
        return [(d, s, r) for d, s, r in rows]

    def stats(self) -> OutboxStats:
        db = self._db
        pending, oldest = db.execute("SELECT count(*), min(created_at) FROM items").fetchone()
        (due,) = db.execute(
            "SELECT count(*) FROM items WHERE next_attempt_at <= ?", (self.clock(),)
        ).fetchone()
        (dead,) = db.execute("SELECT count(*) FROM dead").fetchone()
        row = db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return OutboxStats(pending, due, dead, row[0] if row else 0, oldest)

    @staticmethod
    def _count(db: sqlite3.Connection, name: str, n: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )
