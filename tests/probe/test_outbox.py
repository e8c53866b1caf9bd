"""The outbox: durable across kill -9, idempotent, bounded, with backoff."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probe.evidence.outbox import Backoff, Outbox


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_put_is_idempotent_by_digest(tmp_path: Path) -> None:
    """Putting the same digest twice keeps one item."""
    with Outbox(tmp_path / "o.db") as box:
        assert box.put("a" * 64, b"{}")
        assert not box.put("a" * 64, b"{}")
        assert 1 == box.stats().pending
    assert 0o600 == (tmp_path / "o.db").stat().st_mode & 0o777


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    """Beyond max_items the oldest go first, and stats() reports how many were dropped."""
    with Outbox(tmp_path / "o.db", max_items=3) as box:
        for i in range(5):
            box.put(f"{i:064x}", b"x")
        stats = box.stats()
        kept = [item.digest for item in box.due(10)]
    assert (3, 2) == (stats.pending, stats.dropped)
    assert [f"{i:064x}" for i in (2, 3, 4)] == kept
    with Outbox(tmp_path / "o.db", max_items=3) as box:
        assert 2 == box.stats().dropped  # the count is durable too


def test_backoff_grows_with_jitter_and_caps() -> None:
    """Delays double per attempt within [d/2, d], capped; never zero."""
    b, rng = Backoff(base=10, cap=1000), random.Random(1)
    for attempt, full in [(1, 10), (2, 20), (3, 40), (10, 1000), (50, 1000)]:
        delays = [b.delay(attempt, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1


def test_defer_schedules_and_retry_after_wins(tmp_path: Path) -> None:
    """A deferred item is not due until its time; Retry-After replaces the backoff."""
    clock = FakeClock()
    with Outbox(tmp_path / "o.db", clock=clock, backoff=Backoff(base=60)) as box:
        box.put("a" * 64, b"x")
        box.put("b" * 64, b"y")
        d1 = box.defer("a" * 64, "down")
        d2 = box.defer("b" * 64, "busy", retry_after=600)
        assert 30 <= d1 <= 60
        assert 600 == d2
        assert [] == box.due()
        clock.now += 61
        assert ["a" * 64] == [i.digest for i in box.due()]
        assert (1, "down") == (box.get("a" * 64).attempts, box.get("a" * 64).last_error)  # type: ignore[union-attr]
        clock.now += 3 * 86400  # offline for days: nothing expires
        assert 2 == len(box.due())


def test_dead_letter_keeps_the_reason(tmp_path: Path) -> None:
    """A refused bundle moves to the dead-letter table with its status and reason."""
    with Outbox(tmp_path / "o.db") as box:
        box.put("a" * 64, b"x")
        box.dead_letter("a" * 64, "HTTP 422: schema", 422)
        assert [("a" * 64, 422, "HTTP 422: schema")] == box.dead_letters()
        assert (0, 1) == (box.stats().pending, box.stats().dead)
        box.put("b" * 64, b"y")
        box.dead_letter("b" * 64, "HTTP 401: enrol first", 401)
        assert 1 == box.requeue_dead(401)  # e.g. after enrolling
        assert (["b" * 64], 1) == ([i.digest for i in box.due()], box.stats().dead)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from probe.evidence.outbox import Outbox
    box = Outbox(Path(sys.argv[1]))
    i = 0
    while True:
        digest = f"{i:064x}"
        box.put(digest, b"envelope-" + digest.encode() * 20)
        print(digest, flush=True)
        i += 1
    """
)


@pytest.mark.slow
def test_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """Kill -9 a process writing to the outbox: every put it acknowledged is there, intact."""
    path = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(300)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert -signal.SIGKILL == proc.returncode

    with sqlite3.connect(path) as db:
        assert "ok" == db.execute("PRAGMA integrity_check").fetchone()[0]
    with Outbox(path) as box:
        stored = {item.digest: item.envelope for item in box.due(100_000)}
        assert set(acked) <= set(stored)
        for digest in acked:
            assert b"envelope-" + digest.encode() * 20 == stored[digest]
            assert not box.put(digest, b"again")  # still idempotent after the crash
