"""Quiet levels kept at ingest, bundles arriving in any order, equal a recomputation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from collectors import quiet
from collectors.quiet import mark_quiet
from collectors.runs import report_runs
from collectors.store import Store
from tests.reports.test_fast_paths import load_random


def _levels(engine: Engine) -> list[tuple[str, str, int]]:
    r = report_runs.c
    with engine.connect() as conn:
        return sorted(
            tuple(row) for row in conn.execute(select(r.bundle_digest, r.platform, r.quiet))
        )


def _recomputed(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.begin() as conn:
        conn.execute(report_runs.update().values(quiet=0))
        mark_quiet(conn)
    return _levels(engine)


@pytest.mark.parametrize("seed", [3, 6])
def test_quiet_at_ingest_equals_a_recomputation(engine: Engine, seed: int) -> None:
    store = Store(engine)
    load_random(store, seed, hours=120, change=0.04, outages=0.02)  # shuffled arrival
    kept = _levels(engine)
    assert Counter(q for _d, _p, q in kept).keys() == {0, 1, 2}  # every level occurs
    assert kept == _recomputed(engine)
    with engine.connect() as conn:
        key = conn.execute(select(report_runs.c.key_id).limit(1)).scalar_one()
    assert store.revoke(key, "test")
    kept = _levels(engine)
    assert kept == _recomputed(engine)


@pytest.mark.parametrize(("limit", "first"), [(6, 3600), (10_000, 1200)])
def test_short_reads_at_ingest_widen_to_what_levels_need(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, limit: int, first: int
) -> None:
    """Reads cut at a few runs, or at a few minutes before the new run: ingest reads again,
    wider, and keeps the same levels."""
    monkeypatch.setattr(quiet, "_LIMIT", limit)
    monkeypatch.setattr(quiet, "_WIDEN", (first, 4 * 3600, 24 * 3600))
    load_random(Store(sqlite_engine), 3, hours=60, change=0.04, outages=0.02)
    kept = _levels(sqlite_engine)
    assert {q for _d, _p, q in kept} == {0, 1, 2}
    assert kept == _recomputed(sqlite_engine)


def _bundle(store: Store, key: str, at: datetime, verdict: str) -> None:
    row = {
        "measurement_id": f"{key[:4]}-{at.isoformat()}",
        "platform": "x",
        "target": "t",
        "domain": "d",
        "country": "PK",
        "asn": 64500,
        "verdict": verdict,
        "method": "tls.reset" if verdict == "blocked" else None,
        "started_at": at,
        "body": "{}",
    }
    digest = f"{key[:8]}{int(at.timestamp()):016x}".ljust(64, "0")
    store.add_bundle(digest, key, b"{}", [row])


def test_a_late_voter_an_hour_before_quiets_a_failure(sqlite_engine: Engine) -> None:
    """The other key's run arrives last, several runs before the failure: still its voter."""
    store = Store(sqlite_engine)
    a, b = "a" * 64, "b" * 64
    for key in (a, b):
        store.enroll(key, bytes(32), network=("PK", 64500), voucher=f"token:{key}")
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    for minute in range(0, 120, 10):  # key a every ten minutes, failing once at 01:00
        _bundle(
            store, a, t0 + timedelta(minutes=minute), "blocked" if minute == 60 else "reachable"
        )
    assert [q for _d, _p, q in _levels(sqlite_engine)] == [0] * 12  # no other voter yet
    _bundle(store, b, t0 + timedelta(minutes=15), "reachable")  # five runs before it
    levels = _levels(sqlite_engine)
    assert sorted(q for _d, _p, q in levels) == [0] * 12 + [2]
    assert levels == _recomputed(sqlite_engine)
