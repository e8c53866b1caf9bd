"""Incidents: the onset and end of each block, throttle or outage per platform and network.

The change-point rule (docs/reports.md), over the buckets of one platform in one network:

- a bucket *fails* with kind K when it holds at least ``min_measurements`` and more than half of
  its votes (one per probe key) fail (blocked, throttled, outage); K is its most frequent failing
  verdict, or ``outage`` (scope ``network``) in a network outage;
- a bucket is *reachable* when it holds at least ``min_measurements``, at most half fail and at
  least half are reachable; any other bucket (too few measurements, inconclusive) changes nothing;
- an incident opens at the first failing bucket, and closes at the start of the first of
  ``close_after`` consecutive reachable buckets, or where a failing bucket of another kind opens
  the next incident; one still open at the end of the window is ongoing (``ended_at`` None).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Join, Table, and_, case, func, select

from reports.model import Grain, Incident, IncidentKind, ReportQuery
from reports.query import (
    FAMILIES,
    Cell,
    CellId,
    NetworkId,
    dominant_method,
    network_down,
    sample_digest,
    state_of,
    to_datetime,
    where,
)
from reports.rollup import SECONDS, epoch
from reports.tables import (
    report_cells,
    report_confirmations,
    report_failing,
    report_methods,
    report_networks,
    report_probes,
)

Scope = Literal["platform", "network"]
SAMPLES = 5


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


Status = tuple[IncidentKind, Scope] | Literal["reachable"] | None
Step = tuple[int, Status, Cell | None]  # bucket, what it says, the cell when it fails


def bucket_status(cell: Cell, rule: Rule, network_outage: bool) -> Status:
    """What one bucket says: failing (kind, scope), reachable, or nothing."""
    return status_of(
        cell.measurements,
        cell.probes,
        cell.reachable,
        cell.blocked,
        cell.throttled,
        cell.outage,
        network_outage,
        rule,
    )


def status_of(
    measurements: int,
    probes: int,
    reachable: int,
    blocked: int,
    throttled: int,
    outage: int,
    network_outage: bool,
    rule: Rule,
) -> Status:
    """``bucket_status`` from a cell's counts."""
    if measurements < rule.min_measurements:
        return None
    if network_outage:
        return ("outage", "network")
    state = state_of(probes, reachable, blocked, throttled, outage, False)
    if state in ("blocked", "throttled", "outage"):
        return (state, "platform")
    return "reachable" if state == "reachable" else None


def find_spans(series: Sequence[Cell], outages: set[NetworkId], rule: Rule = Rule()) -> list[Span]:
    """Apply the change-point rule to one series of cells, ordered by bucket."""
    steps: list[Step] = []
    for cell in series:
        status = bucket_status(cell, rule, (cell.bucket, cell.country, cell.asn) in outages)
        steps.append((cell.bucket, status, cell))
    return apply_rule(steps, rule)


def apply_rule(steps: Iterable[Step], rule: Rule) -> list[Span]:
    """The change-point rule over one series' buckets, in order (module docstring)."""
    spans: list[Span] = []
    current: Span | None = None
    streak: list[int] = []  # starts of consecutive reachable buckets
    for bucket, status, cell in steps:
        if status is None:
            continue
        if status == "reachable":
            if current is not None:
                streak.append(bucket)
                if len(streak) >= rule.close_after:
                    current.end = streak[0]
                    current = None
            continue
        streak = []
        kind, scope = status
        if current is not None and (current.kind, current.scope) != (kind, scope):
            current.end = bucket
            current = None
        if current is None:
            current = Span(kind, scope, bucket)
            spans.append(current)
        assert cell is not None  # a failing step carries its cell
        current.failing.append(cell)
    return spans


def incidents(conn: Connection, query: ReportQuery, rule: Rule = Rule()) -> list[Incident]:
    """Incidents in the query's window, ordered by start.

    Only series with a failing bucket can hold an incident, and an incident starts at one: the
    failing cells come first (``report_failing``, with their network's outage flag from
    ``report_networks``), then the cells of those series from their first
    failing bucket on, and the methods and confirmations of the failing cells only. The rule
    then runs over plain tuples; ``Cell`` objects are made for failing buckets alone.
    """
    grain = query.bucket
    c, f, n = report_cells.c, report_failing.c, report_networks.c
    same_cell = and_(
        c.grain == f.grain,
        c.bucket == f.bucket,
        c.platform == f.platform,
        c.country == f.country,
        c.asn == f.asn,
    )
    failing = Failing(
        report_failing.join(report_cells, same_cell),
        and_(where(report_failing, query, grain), c.measurements >= rule.min_measurements),
    )
    network = and_(n.grain == c.grain, n.bucket == c.bucket, n.country == c.country)
    down_flag = case((and_(*network_down(report_networks)), 1), else_=0)
    rows = conn.execute(
        select(c.bucket, c.country, c.asn, down_flag)
        .select_from(failing.cells.outerjoin(report_networks, and_(network, n.asn == c.asn)))
        .where(failing.where)
    ).all()
    if not rows:
        return []
    down = {(b, cc, a) for b, cc, a, flag in rows if flag}
    methods = _of_failing(conn, failing, report_methods, "method", "count")
    confirmations = _of_failing(conn, failing, report_confirmations, "family")
    found: list[Incident] = []
    for key, series in _series(conn, query, failing):
        found.extend(
            _describe(conn, key, span, series, grain, methods, confirmations)
            for span in apply_rule(_steps(key, series, down, rule), rule)
        )
    return sorted(found, key=lambda i: (i.started_at, i.platform, i.country, i.asn))


@dataclass(frozen=True)
class Failing:
    """The failing cells of a query: ``report_failing`` joined to ``report_cells``, filtered."""

    cells: Join
    where: ColumnElement[bool]


Series = tuple[str, str, int]  # platform, country, asn
# bucket, measurements, probes, reachable, blocked, throttled, outage, inconclusive, last, failure
CellRow = tuple[int, int, int, int, int, int, int, int, str, str | None]


def _series(
    conn: Connection, query: ReportQuery, failing: Failing
) -> list[tuple[Series, list[CellRow]]]:
    """The cells of every series with a failing cell, from its first failing bucket on."""
    c = report_cells.c
    first = (
        select(c.platform, c.country, c.asn, func.min(c.bucket).label("first"))
        .select_from(failing.cells)
        .where(failing.where)
        .group_by(c.platform, c.country, c.asn)
        .subquery("first_failing")
    )
    cells = report_cells.alias("series")
    f, a = first.c, cells.c
    rows = conn.execute(
        select(a.platform, a.country, a.asn, a.bucket, a.measurements, a.probes, a.reachable)
        .add_columns(a.blocked, a.throttled, a.outage, a.inconclusive, a.last_digest)
        .add_columns(a.failure_digest)
        .select_from(first)
        .join(
            cells,
            and_(
                a.grain == query.bucket,
                a.platform == f.platform,
                a.country == f.country,
                a.asn == f.asn,
                a.bucket >= f.first,
                a.bucket < epoch(query.until),
            ),
        )
        .order_by(a.platform, a.country, a.asn, a.bucket)
    ).all()
    out: list[tuple[Series, list[CellRow]]] = []
    current: Series | None = None
    for platform, country, asn, *cell in rows:
        if (platform, country, asn) != current:
            current = (platform, country, asn)
            out.append((current, []))
        out[-1][1].append(tuple(cell))
    return out


def _steps(key: Series, series: list[CellRow], down: set[NetworkId], rule: Rule) -> Iterator[Step]:
    platform, country, asn = key
    for bucket, m, probes, r, b, t, o, i, last, failure in series:
        status = status_of(m, probes, r, b, t, o, (bucket, country, asn) in down, rule)
        if status is None or status == "reachable":
            yield bucket, status, None
        else:
            cell = Cell(bucket, platform, country, asn, m, probes, r, b, t, o, i, last, failure)
            yield bucket, status, cell


def _of_failing(conn: Connection, failing: Failing, table: Table, *names: str) -> dict[CellId, Any]:
    """Per failing cell, ``table``'s rows: {method: count} or {family} (``names``)."""
    c, t = report_cells.c, table.c
    same = and_(
        t.grain == c.grain,
        t.bucket == c.bucket,
        t.platform == c.platform,
        t.country == c.country,
        t.asn == c.asn,
    )
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, *(t[name] for name in names))
        .select_from(failing.cells.join(table, same))
        .where(failing.where)
    )
    found: dict[CellId, Any] = {}
    if len(names) == 2:
        for bucket, platform, country, asn, name, count in rows:
            found.setdefault((bucket, platform, country, asn), {})[name] = count
    else:
        for bucket, platform, country, asn, name in rows:
            found.setdefault((bucket, platform, country, asn), set()).add(name)
    return found


def _describe(
    conn: Connection,
    key: Series,
    span: Span,
    series: list[CellRow],
    grain: Grain,
    methods: dict[CellId, dict[str, int]],
    confirmations: dict[CellId, set[str]],
) -> Incident:
    platform, country, asn = key
    last_bucket = span.failing[-1].bucket + SECONDS[grain]
    stop = span.end if span.end is not None else series[-1][0] + SECONDS[grain]
    buckets = [row[0] for row in series]
    inside = series[bisect_left(buckets, span.start) : bisect_left(buckets, stop)]
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
    ident = f"{platform}|{country}|{asn}|{span.kind}|{span.scope}|{span.start}"
    return Incident(
        id=hashlib.sha256(ident.encode()).hexdigest()[:16],
        platform=platform,
        country=country,
        asn=asn,
        kind=span.kind,
        scope=span.scope,
        method=method,
        started_at=to_datetime(span.start),
        ended_at=None if span.end is None else to_datetime(span.end),
        last_seen_at=to_datetime(last_bucket),
        probes=_distinct_probes(conn, key, grain, span.start, stop),
        measurements=sum(row[1] for row in inside),
        failing_buckets=len(span.failing),
        confirmed=confirmed,
        sample_digests=tuple(samples),
    )


def _distinct_probes(conn: Connection, key: Series, grain: Grain, start: int, stop: int) -> int:
    p = report_probes.c
    clause = and_(
        p.grain == grain,
        p.platform == key[0],
        p.country == key[1],
        p.asn == key[2],
        p.bucket >= start,
        p.bucket < stop,
        p.family == "",
    )
    return int(conn.execute(select(func.count(func.distinct(p.key_id))).where(clause)).scalar_one())
