"""A straightforward recomputation of the reports, to check the fast paths against.

Reads every cell of the window as a ``Cell`` and judges network outages with a GROUP BY over all
platform cells and the keys' votes (not ``report_networks``); for incidents, reads every run
before the window's end and applies the rule to every series (no pre-filter, no look-back limit).
Slow on purpose: this is the specification.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, case, func, select

from collectors.rollup import epoch
from collectors.rollup_tables import (
    report_cells,
    report_confirmations,
    report_methods,
    report_votes,
)
from collectors.runs import report_runs
from reports.incidents import (
    RUN_COLUMNS,
    Rule,
    Run,
    apply_rule,
    as_run,
    describe,
    network_status,
    outvoted,
    platform_status,
)
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
from reports.query import (
    Cell,
    CellId,
    NetworkId,
    cell_state,
    dominant_method,
    is_confirmed,
    sample_digest,
    to_datetime,
    where,
)


def cells(conn: Connection, query: ReportQuery, grain: Grain) -> list[Cell]:
    c = report_cells.c
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.measurements, c.probes, c.reachable)
        .add_columns(c.blocked, c.throttled, c.outage, c.inconclusive)
        .add_columns(c.last_digest, c.failure_digest)
        .where(where(report_cells, query, grain))
        .order_by(c.platform, c.country, c.asn, c.bucket)
    )
    return [Cell(*row) for row in rows]


def methods(conn: Connection, query: ReportQuery, grain: Grain) -> dict[CellId, dict[str, int]]:
    c = report_methods.c
    found: dict[CellId, dict[str, int]] = defaultdict(dict)
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.method, c["count"]).where(
            where(report_methods, query, grain)
        )
    )
    for bucket, platform, country, asn, method, count in rows:
        found[(bucket, platform, country, asn)][method] = count
    return found


def confirmations(conn: Connection, query: ReportQuery, grain: Grain) -> dict[CellId, set[str]]:
    c = report_confirmations.c
    found: dict[CellId, set[str]] = defaultdict(set)
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.family).where(
            where(report_confirmations, query, grain)
        )
    )
    for bucket, platform, country, asn, fam in rows:
        found[(bucket, platform, country, asn)].add(fam)
    return found


def network_outages(conn: Connection, query: ReportQuery, grain: Grain) -> set[NetworkId]:
    """Every platform cell failing by votes, and half the network's votes for a local outage."""
    c = report_cells.c
    failing = case((2 * (c.blocked + c.throttled + c.outage) > c.probes, 1), else_=0)
    candidates = conn.execute(
        select(c.bucket, c.country, c.asn, func.sum(c.probes))
        .where(where(report_cells, query, grain, platform=False))
        .group_by(c.bucket, c.country, c.asn)
        .having(func.sum(failing) == func.count())
    ).all()
    v = report_votes.c
    local: dict[NetworkId, int] = defaultdict(int)
    for b, cc, a, r, bl, t, o, i, outage_local in conn.execute(
        select(v.bucket, v.country, v.asn, v.reachable, v.blocked, v.throttled, v.outage)
        .add_columns(v.inconclusive, v.outage_local)
        .where(where(report_votes, query, grain, platform=False))
    ):
        total = r + bl + t + o + i
        if 2 * (bl + t + o) > total and o > max(bl, t) and 2 * outage_local >= total:
            local[(b, cc, a)] += 1
    return {(b, cc, a) for b, cc, a, n in candidates if 2 * local.get((b, cc, a), 0) >= n}


def reachability(conn: Connection, query: ReportQuery) -> list[ReachabilityRow]:
    grain = query.bucket
    found = methods(conn, query, grain)
    confirmed = confirmations(conn, query, grain)
    outages = network_outages(conn, query, grain)
    rows = []
    for cell in cells(conn, query, grain):
        down = (cell.bucket, cell.country, cell.asn) in outages
        state = cell_state(cell, down)
        cell_methods = found.get(cell.id, {})
        families = confirmed.get(cell.id, set())
        fields: dict[str, Any] = {
            "bucket_start": to_datetime(cell.bucket),
            "platform": cell.platform,
            "country": cell.country,
            "asn": cell.asn,
            "state": state,
            "measurements": cell.measurements,
            "probes": cell.probes,
            "reachable": cell.reachable,
            "blocked": cell.blocked,
            "throttled": cell.throttled,
            "outage": cell.outage,
            "inconclusive": cell.inconclusive,
            "methods": dict(sorted(cell_methods.items())),
            "dominant_method": dominant_method(cell_methods, state),
            "confirmed": is_confirmed(state, families, down),
            "confirmed_families": tuple(sorted(families)),
            "network_outage": down,
            "sample_digest": sample_digest(cell, state),
        }
        rows.append(ReachabilityRow(**fields))  # validated: checks the fast path's types too
    return rows


def incidents(conn: Connection, query: ReportQuery, rule: Rule = Rule()) -> list[Incident]:
    """Every run before the window's end, series by series, through the rule."""
    since, until = epoch(query.since), epoch(query.until)
    r = report_runs.c
    rows = conn.execute(
        select(r.country, r.asn, *RUN_COLUMNS)
        .where(r.started < until)
        .order_by(r.started, r.bundle_digest)
    ).all()
    platform_series: dict[tuple[str, int, str], list[Run]] = defaultdict(list)
    network_series: dict[tuple[str, int], list[Run]] = defaultdict(list)
    labels: dict[tuple[str, int], str] = {}
    for country, asn, *rest in rows:
        run = as_run(rest)
        if query.country not in (None, country) or query.asn not in (None, asn):
            continue
        if run.label and run.started >= since:
            labels[(country, asn)] = run.label
        network_series[(country, asn)].append(run)
        if run.method != "outage.local" and query.platform in (None, run.platform):
            platform_series[(country, asn, run.platform)].append(run)
    c = report_confirmations.c
    confirmations: dict[tuple[int, str, str, int], set[str]] = defaultdict(set)
    for bucket, platform, country, asn, fam in conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.family).where(c.grain == "hour")
    ):
        confirmations[(bucket, platform, country, asn)].add(fam)
    found: list[Incident] = []
    for (country, asn, platform), runs in platform_series.items():
        starts = [r.started for r in runs]
        for span in apply_rule(runs, platform_status, rule):
            if since <= span.failing[-1].started and not outvoted(
                span, runs, platform_status, starts
            ):
                name = labels.get((country, asn))
                found.append(
                    describe(span, platform, country, asn, name, "platform", confirmations)
                )
    for (country, asn), runs in network_series.items():
        starts = [r.started for r in runs]
        for span in apply_rule(runs, network_status, rule):
            if since <= span.failing[-1].started and not outvoted(
                span, runs, network_status, starts
            ):
                name = labels.get((country, asn))
                found.append(describe(span, None, country, asn, name, "network", confirmations))
    return sorted(found, key=lambda i: (i.started_at, i.platform or "", i.country, i.asn))
