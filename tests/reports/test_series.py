"""``report_series`` kept at ingest equals a rebuild from the runs, and after a revocation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from collectors.runs import report_runs
from collectors.series import backfill_series, report_series
from collectors.store import Store


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(report_series)))


def _rebuilt(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn, conn.begin() as tx:
        backfill_series(conn)
        rows = sorted(tuple(row) for row in conn.execute(select(report_series)))
        tx.rollback()
    return rows


def test_series_at_ingest_equal_a_rebuild(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    engine, _digests = loaded
    kept = _rows(engine)
    assert kept == _rebuilt(engine)
    with engine.connect() as conn:
        runs = conn.execute(select(func.count()).select_from(report_runs)).scalar_one()
        hours = conn.execute(
            select(func.sum(report_series.c.runs)).where(report_series.c.grain == "hour")
        ).scalar_one()
        fives = conn.execute(
            select(func.sum(report_series.c.runs)).where(report_series.c.grain == "5min")
        ).scalar_one()
    assert runs == hours == fives > 0
    states = {(r[7], r[8], r[11]) for r in kept}  # blocked, throttled, network_down
    assert any(b for b, _t, _d in states) and any(t for _b, t, _d in states)
    assert any(d for _b, _t, d in states)


def test_series_after_a_revocation(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    engine, _digests = loaded
    store = Store(engine)
    with engine.connect() as conn:
        key_id = conn.execute(
            select(report_runs.c.key_id).where(report_runs.c.failing == 1).limit(1)
        ).scalar_one()
    before = _rows(engine)
    assert store.revoke(key_id, "test")
    after = _rows(engine)
    assert after != before
    assert after == _rebuilt(engine)
