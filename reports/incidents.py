"""Incidents: the onset and end of each block, throttle or outage per platform and network.

The change-point rule (docs/reports.md), over the buckets of one platform in one network:

- a bucket *fails* with kind K when it holds at least ``min_measurements`` and more than half of
  them fail (blocked, throttled, outage); K is its most frequent failing verdict, or ``outage``
  (scope ``network``) in a network outage;
- a bucket is *reachable* when it holds at least ``min_measurements``, at most half fail and at
  least half are reachable; any other bucket (too few measurements, inconclusive) changes nothing;
- an incident opens at the first failing bucket, and closes at the start of the first of
  ``close_after`` consecutive reachable buckets, or where a failing bucket of another kind opens
  the next incident; one still open at the end of the window is ongoing (``ended_at`` None).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection, and_, func, select

from probe.model.verdict import VerdictKind
from reports.model import Grain, Incident, IncidentKind, ReportQuery
from reports.query import (
    FAMILIES,
    Cell,
    NetworkId,
    cell_state,
    dominant_method,
    load_cells,
    load_confirmations,
    load_methods,
    network_outages,
    sample_digest,
    to_datetime,
    where,
)
from reports.rollup import SECONDS
from reports.tables import report_cells, report_probes

Scope = Literal["platform", "network"]
SAMPLES = 5
SERIES_QUERIES = 64  # above this many candidate series, load the window in one query


@dataclass(frozen=True)
class Rule:
    """The change-point rule's parameters."""

    min_measurements: int = 3
    close_after: int = 2


@dataclass
class Span:
    """An incident found in one series, before it is described."""

    kind: IncidentKind
    scope: Scope
    start: int
    end: int | None = None
    failing: list[Cell] = field(default_factory=list)


def bucket_status(
    cell: Cell, rule: Rule, network_outage: bool
) -> tuple[IncidentKind, Scope] | Literal["reachable"] | None:
    """What one bucket says: failing (kind, scope), reachable, or nothing."""
    if cell.measurements < rule.min_measurements:
        return None
    state: VerdictKind = cell_state(cell, network_outage)
    if network_outage:
        return ("outage", "network")
    if state in ("blocked", "throttled", "outage"):
        return (state, "platform")
    return "reachable" if state == "reachable" else None


def find_spans(series: Sequence[Cell], outages: set[NetworkId], rule: Rule = Rule()) -> list[Span]:
    """Apply the change-point rule to one series of cells, ordered by bucket."""
    spans: list[Span] = []
    current: Span | None = None
    streak: list[int] = []  # starts of consecutive reachable buckets
    for cell in series:
        status = bucket_status(cell, rule, (cell.bucket, cell.country, cell.asn) in outages)
        if status is None:
            continue
        if status == "reachable":
            if current is not None:
                streak.append(cell.bucket)
                if len(streak) >= rule.close_after:
                    current.end = streak[0]
                    current = None
            continue
        streak = []
        kind, scope = status
        if current is not None and (current.kind, current.scope) != (kind, scope):
            current.end = cell.bucket
            current = None
        if current is None:
            current = Span(kind, scope, cell.bucket)
            spans.append(current)
        current.failing.append(cell)
    return spans


def incidents(conn: Connection, query: ReportQuery, rule: Rule = Rule()) -> list[Incident]:
    """Incidents in the query's window, ordered by start."""
    grain = query.bucket
    found: list[Incident] = []
    candidates = _candidates(conn, query, rule)
    if len(candidates) > SERIES_QUERIES:
        batches = [(query, candidates)]
    else:
        batches = [
            (query.model_copy(update={"platform": p, "country": cc, "asn": a}), {(p, cc, a)})
            for p, cc, a in sorted(candidates)
        ]
    # Network outages: judged over every platform of a network, once for the whole window.
    down: set[NetworkId] = set()
    if candidates:
        down = network_outages(conn, query.model_copy(update={"platform": None}), grain)
    for sub, wanted in batches:
        cells = load_cells(conn, sub, grain)
        cells = [c for c in cells if (c.platform, c.country, c.asn) in wanted]
        methods = load_methods(conn, sub, grain)
        confirmations = load_confirmations(conn, sub, grain)
        for series in _split(cells):
            found.extend(
                _describe(conn, span, series, grain, methods, confirmations)
                for span in find_spans(series, down, rule)
            )
    return sorted(found, key=lambda i: (i.started_at, i.platform, i.country, i.asn))


def _candidates(conn: Connection, query: ReportQuery, rule: Rule) -> set[tuple[str, str, int]]:
    """Series that can hold a failing bucket: a day cell with enough failures (a sound filter)."""
    need = rule.min_measurements // 2 + 1  # more than half of at least min_measurements
    c = report_cells.c
    day = query.model_copy(update={"bucket": "day"}) if query.bucket == "hour" else query
    rows = conn.execute(
        select(c.platform, c.country, c.asn)
        .where(where(report_cells, day, "day"), c.blocked + c.throttled + c.outage >= need)
        .group_by(c.platform, c.country, c.asn)
    )
    return {(p, cc, a) for p, cc, a in rows}


def _split(cells: list[Cell]) -> list[list[Cell]]:
    """Cells (ordered by platform, country, ASN, bucket) cut into one list per series."""
    out: list[list[Cell]] = []
    for cell in cells:
        if not out or (out[-1][0].platform, out[-1][0].country, out[-1][0].asn) != (
            cell.platform,
            cell.country,
            cell.asn,
        ):
            out.append([])
        out[-1].append(cell)
    return out


def _describe(
    conn: Connection,
    span: Span,
    series: list[Cell],
    grain: Grain,
    methods: dict[tuple[int, str, str, int], dict[str, int]],
    confirmations: dict[tuple[int, str, str, int], set[str]],
) -> Incident:
    first = span.failing[0]
    last_bucket = span.failing[-1].bucket + SECONDS[grain]
    stop = span.end if span.end is not None else series[-1].bucket + SECONDS[grain]
    inside = [c for c in series if span.start <= c.bucket < stop]
    totals: dict[str, int] = {}
    for cell in span.failing:
        for name, n in methods.get(cell.id, {}).items():
            totals[name] = totals.get(name, 0) + n
    method = dominant_method(totals, span.kind)
    if span.scope == "network":
        method = "outage.local"
        wanted = {"dns", "tcp", "tls", "http", "quic", "throttle", "outage", "blocked"}
    else:
        wanted = set(FAMILIES[span.kind])
    confirmed = any(confirmations.get(c.id, set()) & wanted for c in span.failing)
    samples: list[str] = []
    for cell in reversed(span.failing):
        digest = sample_digest(cell, span.kind)
        if digest not in samples:
            samples.append(digest)
        if len(samples) == SAMPLES:
            break
    key = f"{first.platform}|{first.country}|{first.asn}|{span.kind}|{span.scope}|{span.start}"
    return Incident(
        id=hashlib.sha256(key.encode()).hexdigest()[:16],
        platform=first.platform,
        country=first.country,
        asn=first.asn,
        kind=span.kind,
        scope=span.scope,
        method=method,
        started_at=to_datetime(span.start),
        ended_at=None if span.end is None else to_datetime(span.end),
        last_seen_at=to_datetime(last_bucket),
        probes=_distinct_probes(conn, first, grain, span.start, stop),
        measurements=sum(c.measurements for c in inside),
        failing_buckets=len(span.failing),
        confirmed=confirmed,
        sample_digests=tuple(samples),
    )


def _distinct_probes(conn: Connection, cell: Cell, grain: Grain, start: int, stop: int) -> int:
    p = report_probes.c
    clause = and_(
        p.grain == grain,
        p.platform == cell.platform,
        p.country == cell.country,
        p.asn == cell.asn,
        p.bucket >= start,
        p.bucket < stop,
        p.family == "",
    )
    return int(conn.execute(select(func.count(func.distinct(p.key_id))).where(clause)).scalar_one())
