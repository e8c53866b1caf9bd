"""Quiet runs: lone failures that make no incident, marked at ingest (``report_runs.quiet``).

A failing run F of a platform series (not one that saw its network down) is *quiet at level k*
(1 or 2) when, among the series' runs that say something (not inconclusive, network up), in time
order: no other one starts at F's time, the k runs right before F and the k right after it are
reachable, and another key spoke in the hour before F. Under ``Rule(close_after=c)`` with c <= k,
F is then an incident of its own, of one failing key among two voters: outvoted
(``reports.incidents.outvoted``), whatever the window. Incidents need not read around it.
``quiet`` holds the level (0: not quiet); the collector keeps it as runs arrive in any order.

``levels`` computes it over a series' runs; ``update_quiet`` re-marks, inside the ingest
transaction, the runs a bundle's new runs can change (the new run, the two speaking runs either
side of it, the failing runs of the hour after it), from a neighbourhood read around them;
``mark_quiet`` recomputes whole series (the migration, the bulk loader, a revocation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, select, tuple_, update

from collectors.runs import report_runs

DEPTH = 2  # the highest level kept: rules closing after at most this many reachable runs gain
VOTE_WINDOW = 3600  # seconds before a failing run whose voters count (the incidents' own)
_WIDEN = (6 * 3600, 48 * 3600, 14 * 86400)  # seconds read before a new run at ingest, then all
_LIMIT = 2000  # runs read at most from there (a network's, then a series')

Series = tuple[str, int, str]  # country, asn, platform


class Said(NamedTuple):
    """A run that says something, as quiet levels read it."""

    started: float
    digest: str
    key_id: str
    failing: int
    quiet: int


_SPEAKING = and_(report_runs.c.network_down == 0, report_runs.c.verdict != "inconclusive")
_COLUMNS = (
    report_runs.c.started,
    report_runs.c.bundle_digest,
    report_runs.c.key_id,
    report_runs.c.failing,
    report_runs.c.quiet,
)


def level(runs: Sequence[Said], i: int) -> int:
    """The quiet level of ``runs[i]`` (the series' speaking runs in time order, then digest)."""
    run = runs[i]
    if not run.failing:
        return 0
    if (i > 0 and runs[i - 1].started == run.started) or (
        i + 1 < len(runs) and runs[i + 1].started == run.started
    ):
        return 0
    before = after = 0
    while before < DEPTH and i - before - 1 >= 0 and not runs[i - before - 1].failing:
        before += 1
    while after < DEPTH and i + after + 1 < len(runs) and not runs[i + after + 1].failing:
        after += 1
    depth = min(before, after)
    if not depth:
        return 0
    j = i - 1
    while j >= 0 and runs[j].started >= run.started - VOTE_WINDOW:
        if runs[j].key_id != run.key_id:
            return depth
        j -= 1
    return 0


def levels(runs: Sequence[Said]) -> dict[str, int]:
    """Each failing run's level, by digest (one run per bundle and series)."""
    return {run.digest: level(runs, i) for i, run in enumerate(runs) if run.failing}


def _set(conn: Connection, series: Series, changed: Mapping[str, int]) -> None:
    if not changed:
        return
    r = report_runs.c
    conn.execute(
        update(report_runs)
        .where(r.bundle_digest == bindparam("d"), r.platform == bindparam("p"))
        .values(quiet=bindparam("q")),
        [{"d": d, "p": series[2], "q": q} for d, q in sorted(changed.items())],
    )


def mark_quiet(conn: Connection, series: Iterable[Series] | None = None) -> int:
    """Recompute the levels of whole series (every one by default); returns the quiet runs."""
    r = report_runs.c
    query = select(r.country, r.asn, r.platform, *_COLUMNS).where(_SPEAKING)
    if series is not None:
        wanted = sorted(set(series))
        if not wanted:
            return 0
        query = query.where(tuple_(r.country, r.asn, r.platform).in_(wanted))
    rows = conn.execute(query.order_by(r.country, r.asn, r.platform, r.started, r.bundle_digest))
    quiet = 0
    current: Series | None = None
    runs: list[Said] = []

    def flush() -> None:
        nonlocal quiet
        if current is None:
            return
        found = levels(runs)
        quiet += sum(1 for q in found.values() if q)
        stored = {run.digest: run.quiet for run in runs}
        _set(conn, current, {d: q for d, q in found.items() if q != stored[d]})

    for country, asn, platform, *rest in rows:
        key = (country, int(asn), platform)
        if key != current:
            flush()
            current, runs = key, []
        runs.append(Said(*rest))
    flush()
    return quiet


def update_quiet(conn: Connection, runs: Sequence[Mapping[str, Any]]) -> None:
    """Re-mark what one bundle's new runs (``collectors.runs.run_rows``, stored) can change.

    One read per network: its speaking runs from ``_WIDEN[0]`` before the earliest new run on
    (at most ``_LIMIT``); a series whose candidates need more is read again, wider.
    """
    networks: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for run in runs:
        if not run["network_down"] and run["verdict"] != "inconclusive":  # else: changes nothing
            networks.setdefault((str(run["country"]), int(run["asn"])), []).append(run)
    r = report_runs.c
    for (country, asn), new in sorted(networks.items()):
        lo = min(float(run["started"]) for run in new) - _WIDEN[0]
        platforms = sorted({str(run["platform"]) for run in new})
        rows = conn.execute(
            select(r.platform, *_COLUMNS)
            .where(r.country == country, r.asn == asn, r.platform.in_(platforms), _SPEAKING)
            .where(r.started >= lo)
            .order_by(r.started, r.bundle_digest)
            .limit(_LIMIT)
        ).all()
        hi = float(rows[-1].started) if len(rows) == _LIMIT else None
        read: dict[str, list[Said]] = {}
        for platform, *rest in rows:
            read.setdefault(platform, []).append(Said(*rest))
        for run in new:
            series = (country, asn, str(run["platform"]))
            _update_series(conn, series, run, read.get(series[2], []), lo, hi)


def _read(conn: Connection, series: Series, lo: float | None) -> tuple[list[Said], float | None]:
    """The series' speaking runs from ``lo`` (at most ``_LIMIT``), and the time they reach."""
    r = report_runs.c
    query = select(*_COLUMNS).where(
        r.country == series[0], r.asn == series[1], r.platform == series[2], _SPEAKING
    )
    if lo is not None:
        query = query.where(r.started >= lo).limit(_LIMIT)
    runs = [Said(*row) for row in conn.execute(query.order_by(r.started, r.bundle_digest))]
    return runs, float(runs[-1].started) if lo is not None and len(runs) == _LIMIT else None


def _update_series(
    conn: Connection,
    series: Series,
    new: Mapping[str, Any],
    runs: list[Said],
    lo: float | None,
    hi: float | None,
) -> None:
    """Re-mark the candidates around the new run ``new`` of ``series`` (``runs``: every one read
    from ``lo`` to ``hi``, None: the series' ends), reading wider while they need more."""
    started, digest = float(new["started"]), str(new["bundle_digest"])
    wanted = _candidates(runs, started, digest, lo, hi)
    for width in (*_WIDEN[1:], None):
        if wanted is not None:
            break
        lo = None if width is None else started - width
        runs, hi = _read(conn, series, lo)
        wanted = _candidates(runs, started, digest, lo, hi)
    assert wanted is not None  # the whole series was read
    changed = {}
    for i in wanted:
        q = level(runs, i)
        if q != runs[i].quiet:
            changed[runs[i].digest] = q
    _set(conn, series, changed)


def _candidates(
    runs: Sequence[Said], started: float, digest: str, lo: float | None, hi: float | None
) -> list[int] | None:
    """Positions of the failing runs whose level the new run can change: itself, the runs at
    its time, the DEPTH speaking runs either side, the failing runs of the hour after it.

    None when ``runs`` (every one from ``lo`` to ``hi``) may not hold them or what their levels
    read (DEPTH runs and a tie either side, the hour before).
    """
    at = next((i for i, run in enumerate(runs) if run.digest == digest), None)
    if at is None:
        return None
    first = last = at
    while first > 0 and runs[first - 1].started == started:
        first -= 1
    while last + 1 < len(runs) and runs[last + 1].started == started:
        last += 1
    first, last = first - DEPTH, last + DEPTH
    while last + 1 < len(runs) and runs[last + 1].started <= started + VOTE_WINDOW:
        last += 1
    if lo is not None and (first - DEPTH - 1 < 0 or runs[first].started - VOTE_WINDOW <= lo):
        return None
    if hi is not None:
        after = last + DEPTH + 1
        if after >= len(runs) or runs[after].started >= hi or hi <= started + VOTE_WINDOW:
            return None
    first, last = max(first, 0), min(last, len(runs) - 1)
    return [i for i in range(first, last + 1) if runs[i].failing]


def quiet_series(conn: Connection, key_id: str) -> list[Series]:
    """The series in which ``key_id`` has runs (their levels change when it is revoked)."""
    r = report_runs.c
    rows = conn.execute(select(r.country, r.asn, r.platform).where(r.key_id == key_id).distinct())
    return sorted((country, int(asn), platform) for country, asn, platform in rows)
