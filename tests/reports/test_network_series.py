"""``report_network_series`` kept at ingest (any arrival order) equals a derivation from the
series, and after a revocation; its states are the timeline's from the runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from collectors.network_series import backfill_network_series, report_network_series
from collectors.runs import report_runs
from collectors.store import Store
from tests.reports.test_fast_paths import load_random


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(report_network_series)))


def _derived(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn, conn.begin() as tx:
        backfill_network_series(conn)
        rows = sorted(tuple(row) for row in conn.execute(select(report_network_series)))
        tx.rollback()
    return rows


def test_network_series_at_ingest_and_after_a_revocation(engine: Engine) -> None:
    store = Store(engine)
    load_random(store, 8, hours=30)  # shuffled arrival
    kept = _rows(engine)
    assert kept == _derived(engine)
    assert {row[0] for row in kept} == {"5min", "hour", "3h"}
    worst = {row[-1] for row in kept}
    assert {0, 1, 4} <= worst and None in worst  # blocked, throttled, reachable; all down
    with engine.connect() as conn:
        key_id = conn.execute(
            select(report_runs.c.key_id).where(report_runs.c.failing == 1).limit(1)
        ).scalar_one()
    assert store.revoke(key_id, "test")
    after = _rows(engine)
    assert after != kept
    assert after == _derived(engine)
