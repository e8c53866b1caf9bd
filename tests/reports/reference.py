"""A straightforward recomputation of the reports, to check the fast paths against.

Reads every cell of the window as a ``Cell``, judges network outages with a GROUP BY over all
platform cells and the keys' votes (not ``report_networks``), and applies the
change-point rule to every series (no pre-filter). Slow on purpose: this is the specification.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from reports.incidents import SAMPLES, Rule, find_spans
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
from reports.query import (
    FAMILIES,
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
from reports.rollup import SECONDS
from reports.tables import (
    report_cells,
    report_confirmations,
    report_methods,
    report_probes,
    report_votes,
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
    grain = query.bucket
    down = network_outages(conn, query.model_copy(update={"platform": None}), grain)
    found_methods = methods(conn, query, grain)
    found_confirmations = confirmations(conn, query, grain)
    series: dict[tuple[str, str, int], list[Cell]] = defaultdict(list)
    for cell in cells(conn, query, grain):
        series[(cell.platform, cell.country, cell.asn)].append(cell)
    found: list[Incident] = []
    for one in series.values():
        for span in find_spans(one, down, rule):
            first = span.failing[0]
            stop = span.end if span.end is not None else one[-1].bucket + SECONDS[grain]
            totals: dict[str, int] = defaultdict(int)
            for cell in span.failing:
                for name, n in found_methods.get(cell.id, {}).items():
                    totals[name] += n
            method = dominant_method(totals, span.kind)
            wanted = set(FAMILIES[span.kind])
            if span.scope == "network":
                method = "outage.local"
                wanted = {"dns", "tcp", "tls", "http", "quic", "throttle", "outage", "blocked"}
            samples: list[str] = []
            for cell in reversed(span.failing):
                digest = sample_digest(cell, span.kind)
                if digest not in samples and len(samples) < SAMPLES:
                    samples.append(digest)
            p = report_probes.c
            probes = conn.execute(
                select(func.count(func.distinct(p.key_id))).where(
                    and_(
                        p.grain == grain,
                        p.platform == first.platform,
                        p.country == first.country,
                        p.asn == first.asn,
                        p.bucket >= span.start,
                        p.bucket < stop,
                        p.family == "",
                    )
                )
            ).scalar_one()
            key = f"{first.platform}|{first.country}|{first.asn}|{span.kind}|{span.scope}|"
            found.append(
                Incident(
                    id=hashlib.sha256(f"{key}{span.start}".encode()).hexdigest()[:16],
                    platform=first.platform,
                    country=first.country,
                    asn=first.asn,
                    kind=span.kind,
                    scope=span.scope,
                    method=method,
                    started_at=to_datetime(span.start),
                    ended_at=None if span.end is None else to_datetime(span.end),
                    last_seen_at=to_datetime(span.failing[-1].bucket + SECONDS[grain]),
                    probes=int(probes),
                    measurements=sum(c.measurements for c in one if span.start <= c.bucket < stop),
                    failing_buckets=len(span.failing),
                    confirmed=any(
                        found_confirmations.get(c.id, set()) & wanted for c in span.failing
                    ),
                    sample_digests=tuple(samples),
                )
            )
    return sorted(found, key=lambda i: (i.started_at, i.platform, i.country, i.asn))
