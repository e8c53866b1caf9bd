"""Incidents: blocks, throttles and outages at the measurements' own times (docs/reports.md).

Incidents are found over *runs* (``collectors.runs``: one probe's bundle, one platform), ordered by
the time of their first measurement. Per platform and network (country, ASN):

- a failing run (blocked, throttled, outage) of kind K opens an incident of kind K, or extends
  the open one of that kind; a failing run of another kind ends it and opens the next;
- a reachable run ends the open incident when ``close_after`` reachable runs follow each other,
  or when no failing run comes after it; the incident then ended at the first of them;
- inconclusive runs change nothing.

A run that saw its own network down (``outage.local``) says nothing about the platform: such runs
form the *network* series of their network, over every platform, where any run that reached
the Internet (reachable, or failing another way) counts as the network working. A network
outage is an incident of its own, with platform None and scope ``network``.

``started_at`` is the first failing measurement, ``last_seen_at`` the last, ``last_good_before``
and ``first_good_after`` the runs that saw it work around them. Every incident is reported;
``confirmed`` marks those that two probes agreed on within an hour (``report_confirmations``).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, case, func, select, true

from collectors.quiet import DEPTH
from collectors.rollup import bucket_of, epoch
from collectors.rollup_tables import report_confirmations
from collectors.runs import report_runs
from reports.asnames import operator
from reports.model import Incident, IncidentKind, ReportQuery, construct, current_bucket_end
from reports.query import FAMILIES, to_datetime

Scope = Literal["platform", "network"]
SAMPLES = 5
VOTE_WINDOW = 3600  # seconds of runs before an incident whose keys are counted as voters
NEAR = 2 * VOTE_WINDOW  # seconds: a next failing run this close ends a run range without a lookup
LOOKBACK_ROWS = 200  # runs read at a time when an incident was already open at the window start


@dataclass(frozen=True)
class Rule:
    """The rule's parameter: reachable runs in a row that end an incident."""

    close_after: int = 2


@dataclass(frozen=True, slots=True)
class Run:
    """One run as incidents read it."""

    started: float
    digest: str
    platform: str
    key_id: str
    verdict: str
    method: str | None
    measurements: int
    first_failure: float | None
    last_failure: float | None
    label: str | None
    kbps: float | None = None
    control_kbps: float | None = None
    quiet: int = 0  # collectors.quiet: a lone failure, outvoted under rules closing this soon

    @property
    def network_down(self) -> bool:
        return self.method == "outage.local"


Status = Literal["reachable", "blocked", "throttled", "outage"] | None


@dataclass
class Span:
    """An incident found in one series, before it is described."""

    kind: IncidentKind
    failing: list[Run] = field(default_factory=list)
    good_before: Run | None = None
    good_after: Run | None = None
    ended_by: Run | None = None  # the failing run of another kind that ended it


def platform_status(run: Run) -> Status:
    if run.verdict in ("reachable", "blocked", "throttled", "outage"):
        return run.verdict  # type: ignore[return-value]
    return None


def network_status(run: Run) -> Status:
    if run.method == "outage.local":
        return "outage"
    return None if run.verdict == "inconclusive" else "reachable"


Judge = Callable[[Run], Status]


def apply_rule(runs: Sequence[Run], judge: Judge, rule: Rule) -> list[Span]:
    """The rule over one series' runs, in time order (module docstring)."""
    spans: list[Span] = []
    current: Span | None = None
    good: Run | None = None  # the last reachable run since the last failing one
    streak: list[Run] = []  # reachable runs since the open incident's last failing run
    for run in runs:
        status = judge(run)
        if status is None:
            continue
        if status == "reachable":
            good = run
            if current is not None:
                streak.append(run)
                if len(streak) >= rule.close_after:
                    current.good_after = streak[0]
                    current, streak = None, []
            continue
        if current is not None and current.kind != status:
            current.good_after = streak[0] if streak else None
            current.ended_by = None if streak else run
            current = None
        if current is None:
            current = Span(status, good_before=good)
            spans.append(current)
        good, streak = None, []
        current.failing.append(run)
    if current is not None and streak:
        current.good_after = streak[0]
    return spans


Located = tuple[str, int, Run]  # country, asn, run


def incidents(
    conn: Connection,
    query: ReportQuery,
    rule: Rule = Rule(),
    window_runs: Sequence[Located] | None = None,
) -> list[Incident]:
    """Incidents with a failing run in the query's window, ordered by onset.

    The failing runs of the window (a partial index) name the series that can hold one; each
    series' runs in the window are read through the series index (or taken from
    ``window_runs``, every run of the window when the caller has read them already: the
    dashboard), and only a series whose incident was already open at the window start is read
    further back, until its onset.
    """
    since, until = epoch(query.since), epoch(query.until)
    lead = since - VOTE_WINDOW  # the votes an incident starting at ``since`` is weighed against
    r = report_runs.c
    failing = and_(r.failing == 1, r.started >= since, r.started < until, *_filters(query, True))
    platform_series = select(r.country, r.asn, r.platform).where(
        failing, r.network_down == 0, *_loud(rule)
    )
    network_series = select(r.country, r.asn).where(
        r.failing == 1, r.started >= since, r.started < until, r.network_down == 1,
        *_filters(query, False),
    )  # fmt: skip
    wanted_p = {tuple(row) for row in conn.execute(platform_series.distinct())}
    wanted_n = {tuple(row) for row in conn.execute(network_series.distinct())}
    if not wanted_p and not wanted_n:
        return []
    per_platform: dict[tuple[str, int, str], list[Run]] = {key: [] for key in wanted_p}
    per_network: dict[tuple[str, int], list[Run]] = {key: [] for key in wanted_n}
    labels: dict[tuple[str, int], str] = {}
    if window_runs is None:
        if per_platform:
            for key, runs in _span_runs(conn, query, False, lead, until, rule).items():
                if key in per_platform:
                    per_platform[key] = runs
        if per_network:
            for key, runs in _span_runs(conn, query, True, lead, until, rule).items():
                if key in per_network:
                    per_network[key] = runs
        located: Iterable[Located] = (
            (cc, asn, run)
            for group in (per_platform.items(), per_network.items())
            for (cc, asn, *_p), runs in group
            for run in runs
        )
    else:
        located = window_runs
        for country, asn, run in window_runs:
            if (country, asn) in per_network:
                per_network[(country, asn)].append(run)
            series = per_platform.get((country, asn, run.platform))
            if series is not None:
                series.append(run)
    for country, asn, run in located:
        if run.label:
            labels[(country, asn)] = run.label
    networks = {(cc, asn) for cc, asn, _p in wanted_p} | set(per_network)
    confirmations = _confirmations(conn, query, networks)
    found: list[Incident] = []
    for (country, asn, platform), runs in per_platform.items():
        runs = [run for run in runs if run.method != "outage.local"]
        runs = _with_onset(conn, runs, (country, asn, platform), since, platform_status, rule)
        starts = [run.started for run in runs]
        for span in apply_rule(runs, platform_status, rule):
            if quiet(span, rule):
                continue
            if in_window(span, since) and not outvoted(span, runs, platform_status, starts):
                name = operator(asn, labels.get((country, asn)))
                found.append(
                    describe(span, platform, country, asn, name, "platform", confirmations)
                )
    for (country, asn), runs in per_network.items():
        runs = _with_onset(conn, runs, (country, asn, None), since, network_status, rule)
        starts = [run.started for run in runs]
        for span in apply_rule(runs, network_status, rule):
            if in_window(span, since) and not outvoted(span, runs, network_status, starts):
                name = operator(asn, labels.get((country, asn)))
                found.append(describe(span, None, country, asn, name, "network", confirmations))
    return sorted(found, key=lambda i: (i.started_at, i.platform or "", i.country, i.asn))


def _loud(rule: Rule) -> list[ColumnElement[bool]]:
    """The failing platform runs that are not quiet under ``rule`` (``collectors.quiet``)."""
    if 1 <= rule.close_after <= DEPTH:
        return [report_runs.c.quiet < rule.close_after]
    return []


def quiet(span: Span, rule: Rule) -> bool:
    """A span of one quiet failing run: outvoted over every run, however few were read."""
    return (
        len(span.failing) == 1 and 1 <= rule.close_after <= DEPTH
        and span.failing[0].quiet >= rule.close_after
    )  # fmt: skip


def _filters(query: ReportQuery, platform: bool) -> list[ColumnElement[bool]]:
    r = report_runs.c
    clauses = []
    if platform and query.platform is not None:
        clauses.append(r.platform == query.platform)
    if query.country is not None:
        clauses.append(r.country == query.country)
    if query.asn is not None:
        clauses.append(r.asn == query.asn)
    return clauses


RUN_COLUMNS = (
    report_runs.c.started,
    report_runs.c.bundle_digest,
    report_runs.c.platform,
    report_runs.c.key_id,
    report_runs.c.verdict,
    report_runs.c.method,
    report_runs.c.measurements,
    report_runs.c.first_failure,
    report_runs.c.last_failure,
    report_runs.c.label,
    report_runs.c.kbps,
    report_runs.c.control_kbps,
    report_runs.c.quiet,
)


def _span_runs(
    conn: Connection, query: ReportQuery, network: bool, lead: float, until: float, rule: Rule
) -> dict[tuple[Any, ...], list[Run]]:
    """The runs in ``[lead, until)`` that can change incidents, per series, in time order.

    Per platform (``network`` False) or, over every platform, per network. A long stretch of
    reachable runs only moves the "last good run" along, so only the time around each failing
    run is read: from the last reachable run or ``VOTE_WINDOW`` before it, whichever is earlier,
    to the ``close_after``-th reachable run after it (strictly later: runs at equal times are
    read whole), each range cut at the series' previous and next failing runs (whose own ranges
    cover the rest). A previous failing run within ``VOTE_WINDOW`` starts the range, and a next
    one within ``NEAR`` ends it, without looking up the reachable neighbours (inside a long
    incident, a range reaches the next failing run; reading more of a series changes nothing).
    One statement: the failing runs (a covering partial index; not the quiet ones,
    ``collectors.quiet``), index-only lookups of the reachable neighbours where needed, and a
    range scan of the series index per stretch of overlapping ranges. The rule and the votes
    over these runs give what they give over every run.
    """
    r = report_runs.c
    near, far = report_runs.alias("near"), report_runs.alias("far")
    keys = ("country", "asn") if network else ("country", "asn", "platform")

    def same(t: Any, other: Any) -> list[ColumnElement[bool]]:
        return [t.c[k] == other.c[k] for k in keys]

    def good(t: Any) -> list[ColumnElement[bool]]:
        if network:  # any run that reached the Internet
            return [t.c.network_down == 0, t.c.verdict != "inconclusive"]
        return [t.c.verdict == "reachable", t.c.network_down == 0]

    series = [r[k] for k in keys]
    failing = [r.network_down == 1] if network else [r.failing == 1, r.network_down == 0]
    if not network:
        failing += _loud(rule)
    spans = (
        select(
            *series,
            r.started,
            func.lag(r.started).over(partition_by=series, order_by=r.started).label("previous"),
            func.lead(r.started).over(partition_by=series, order_by=r.started).label("next"),
        )
        .where(*failing, r.started >= lead, r.started < until, *_filters(query, not network))
        .subquery()
    )
    s = spans.c
    before = (  # the last reachable run before the failing one
        select(func.max(near.c.started))
        .where(*same(near, spans), *good(near), near.c.started < s.started)
        .where(near.c.started >= lead)
        .scalar_subquery()
    )
    after = (  # the close_after-th reachable run after it
        select(far.c.started)
        .where(*same(far, spans), *good(far), far.c.started > s.started)
        .where(far.c.started < until)
        .order_by(far.c.started)
        .limit(1)
        .offset(rule.close_after - 1)
        .scalar_subquery()
    )
    vote = s.started - VOTE_WINDOW
    streak = (  # the first failing run: from close_after reachable runs before it (or lead)
        select(near.c.started)
        .where(*same(near, spans), *good(near), near.c.started < s.started)
        .where(near.c.started >= lead)
        .order_by(near.c.started.desc())
        .limit(1)
        .offset(rule.close_after - 1)
        .scalar_subquery()
    )
    # Lowest and highest of two non-null values, each operand evaluated once (a CASE would
    # run a lookup twice): LEAST/GREATEST on PostgreSQL, SQLite's scalar min/max.
    postgres = conn.dialect.name == "postgresql"
    low, high = (func.least, func.greatest) if postgres else (func.min, func.max)
    first = high(low(vote, func.coalesce(streak, lead)), lead)
    # A previous failing run within the vote window bounds the range itself: no lookup.
    later = case(
        (s.previous >= vote, s.previous),
        else_=high(low(vote, func.coalesce(before, s.started)), s.previous),
    )
    # A next failing run close by ends the range (reading up to it reads a little more).
    hi = case(
        (s.next - s.started <= NEAR, s.next),
        else_=low(func.coalesce(s.next, until), func.coalesce(after, until)),
    )
    ranges = select(
        *(s[k] for k in keys),
        case((s.previous.is_(None), first), else_=later).label("lo"),
        hi.label("hi"),
    ).subquery()
    merged = _merged(ranges, keys)
    same_series = [r[k] == merged.c[k] for k in keys]
    in_range = [r.started >= merged.c.lo, r.started <= merged.c.hi]
    inside = [*same_series, *in_range]
    if postgres:  # a scan of the series index per stretch, whatever the estimates say
        each = select(*RUN_COLUMNS).where(*inside).offset(0).lateral()  # OFFSET: not pulled up
        read = select(*(merged.c[k] for k in keys), *each.c).join_from(merged, each, true())
        read = read.order_by(each.c.started, each.c.bundle_digest)
    else:  # SQLite's nested loop reads the series index already
        read = select(*[r[k] for k in keys], *RUN_COLUMNS).select_from(merged)
        read = read.join(report_runs, and_(*same_series)).where(*in_range)
        read = read.order_by(r.started, r.bundle_digest)
    rows = conn.execute(read)
    found: dict[tuple[Any, ...], list[Run]] = {}
    width = len(keys)
    for row in rows:
        if row.started < until:  # ``hi`` may be the window's end, which is not in it
            found.setdefault(tuple(row[:width]), []).append(as_run(row[width:]))
    return found


def _merged(ranges: Any, keys: Sequence[str]) -> Any:
    """``ranges`` (a series' ``lo`` to ``hi``, overlapping) merged per series into disjoint
    ones: one scan of the series index per stretch (a long incident is one), no run twice."""
    g = ranges.c
    series = [g[k] for k in keys]
    order = (g.lo, g.hi)
    reach = func.max(g.hi).over(partition_by=series, order_by=order, rows=(None, -1))
    opens = case((g.lo <= reach, 0), else_=1).label("opens")  # reaches past every earlier one
    marked = select(*series, g.lo, g.hi, opens).subquery()
    m = marked.c
    each = [m[k] for k in keys]
    island = func.sum(m.opens).over(partition_by=each, order_by=(m.lo, m.hi), rows=(None, 0))
    numbered = select(*each, m.lo, m.hi, island.label("island")).subquery()
    n = numbered.c
    return (
        select(*(n[k] for k in keys), func.min(n.lo).label("lo"), func.max(n.hi).label("hi"))
        .group_by(*(n[k] for k in keys), n.island)
        .subquery()
    )


def window_runs(conn: Connection, query: ReportQuery) -> list[Located]:
    """Every run of the query's window and network filters (any platform), in time order.

    From ``VOTE_WINDOW`` before the window: the votes its first incidents are weighed against.
    """
    r = report_runs.c
    rows = conn.execute(
        select(r.country, r.asn, *RUN_COLUMNS)
        .where(
            r.started >= epoch(query.since) - VOTE_WINDOW,
            r.started < epoch(query.until),
            *_filters(query, False),
        )
        .order_by(r.started, r.bundle_digest)
    )
    return [(country, asn, as_run(rest)) for country, asn, *rest in rows]


def as_run(row: Any) -> Run:
    return Run(*row)


def _with_onset(
    conn: Connection,
    runs: list[Run],
    series: tuple[str, int, str | None],
    since: int,
    status: Judge,
    rule: Rule,
) -> list[Run]:
    """``runs``, preceded by earlier ones when the series was failing at the window start."""
    if _closed_before(runs, since, status, rule):
        return runs
    country, asn, platform = series
    r = report_runs.c
    clauses = [r.country == country, r.asn == asn]
    if platform is not None:
        clauses.append(r.platform == platform)
    earlier: list[Run] = []
    bound: float = runs[0].started if runs else since  # read before what was read
    while True:
        rows = conn.execute(
            select(*RUN_COLUMNS)
            .where(*clauses, r.started < bound)
            .order_by(r.started.desc(), r.bundle_digest.desc())
            .limit(LOOKBACK_ROWS)
        ).all()
        batch = [as_run(row) for row in rows]
        if platform is not None:
            batch = [run for run in batch if run.method != "outage.local"]
        earlier.extend(batch)
        reachable = 0
        for run in earlier:  # newest first: stop after close_after reachable runs in a row
            s = status(run)
            if s == "reachable":
                reachable += 1
                if reachable >= rule.close_after:
                    break
            elif s is not None:
                reachable = 0
        if reachable >= rule.close_after or len(rows) < LOOKBACK_ROWS:
            break
        bound = float(rows[-1][0])
    if earlier:  # and the votes before the earliest run read
        earliest = earlier[-1].started
        more = conn.execute(
            select(*RUN_COLUMNS)
            .where(*clauses, r.started < earliest, r.started >= earliest - VOTE_WINDOW)
            .order_by(r.started.desc(), r.bundle_digest.desc())
        ).all()
        extra = [as_run(row) for row in more]
        if platform is not None:
            extra = [run for run in extra if run.method != "outage.local"]
        earlier.extend(extra)
    return [*reversed(earlier), *runs]


def _closed_before(runs: Sequence[Run], since: float, status: Judge, rule: Rule) -> bool:
    """Whether nothing before ``runs`` can change the series' incidents in the window.

    True when ``close_after`` reachable runs come before the first failing one (an incident
    open before them ended), and that failing run is in the window (its votes are among
    ``runs``), or when nothing fails.
    """
    reachable = 0
    for run in runs:
        s = status(run)
        if s == "reachable":
            reachable += 1
        elif s is not None:
            return reachable >= rule.close_after and run.started >= since
    return True


def outvoted(span: Span, runs: Sequence[Run], judge: Judge, starts: Sequence[float]) -> bool:
    """One vote per key: the span's failing keys are not a majority of the keys that spoke.

    The keys that spoke are those with a run that says something (reachable or failing) from
    ``VOTE_WINDOW`` before the span's first failing run to its last. One key sending many
    failing bundles while most probes of the network see the platform work makes no incident.
    """
    first = bisect_left(starts, span.failing[0].started - VOTE_WINDOW)
    last = bisect_right(starts, span.failing[-1].started)
    voters = {r.key_id for r in runs[first:last] if judge(r) is not None}
    failing = {r.key_id for r in span.failing}
    return 2 * len(failing) <= len(voters)


def in_window(span: Span, since: int) -> bool:
    """The span has a failing run in the window (every run read is before its end)."""
    return span.failing[-1].started >= since


CellKey = tuple[int, str, str, int]  # hour bucket, platform, country, asn


def _confirmations(
    conn: Connection, query: ReportQuery, networks: set[tuple[str, int]]
) -> dict[tuple[int, str, str, int], set[str]]:
    """The families confirmed per hour cell of the window's networks (report_confirmations)."""
    c = report_confirmations.c
    clauses = [c.grain == "hour", c.bucket >= bucket_of(epoch(query.since), "hour") - 31 * 86400]
    clauses.append(c.bucket < epoch(query.until))
    if query.country is not None:
        clauses.append(c.country == query.country)
    if query.asn is not None:
        clauses.append(c.asn == query.asn)
    found: dict[CellKey, set[str]] = {}
    for bucket, platform, country, asn, fam in conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.family).where(*clauses)
    ):
        if (country, asn) in networks:
            found.setdefault((bucket, platform, country, asn), set()).add(fam)
    return found


def describe(
    span: Span,
    platform: str | None,
    country: str,
    asn: int,
    name: str | None,
    scope: Scope,
    confirmations: dict[CellKey, set[str]],
) -> Incident:
    runs = span.failing
    methods = Counter(run.method for run in runs if run.method)
    method = min(methods.items(), key=lambda kv: (-kv[1], kv[0]))[0] if methods else None
    wanted = {"outage"} if scope == "network" else set(FAMILIES[span.kind])
    confirmed_at = _confirmed_at(runs, wanted, country, asn, confirmations)
    samples: list[str] = []
    for run in reversed(runs):
        if run.verdict == span.kind and run.method == method and run.digest not in samples:
            samples.append(run.digest)
        if len(samples) == SAMPLES:
            break
    onset = min(run.first_failure or run.started for run in runs)
    last = max(run.last_failure or run.started for run in runs)
    after = span.good_after.started if span.good_after else None
    ended = after if after is not None else (span.ended_by.started if span.ended_by else None)
    ident = f"{platform or '*'}|{country}|{asn}|{span.kind}|{scope}|{runs[0].digest}"
    fields = {
        "id": hashlib.sha256(ident.encode()).hexdigest()[:16],
        "platform": platform,
        "country": country,
        "asn": asn,
        "network": name,
        "kind": span.kind,
        "scope": scope,
        "method": method,
        "started_at": _at(onset),
        "ended_at": None if ended is None else _at(ended),
        "last_seen_at": _at(last),
        "last_good_before": _at(span.good_before.started) if span.good_before else None,
        "first_good_after": None if after is None else _at(after),
        "probes": len({run.key_id for run in runs}),
        "runs": len(runs),
        "measurements": sum(run.measurements for run in runs),
        "confirmed": confirmed_at is not None,
        "confirmed_at": None if confirmed_at is None else _at(confirmed_at),
        "sample_digests": tuple(samples),
    }
    return construct(Incident, fields)


def _confirmed_at(
    runs: Sequence[Run],
    wanted: set[str],
    country: str,
    asn: int,
    confirmations: dict[CellKey, set[str]],
) -> float | None:
    """When a second probe's failing run joined another's in a confirmed hour, if one did."""
    keys: dict[tuple[int, str], set[str]] = {}
    for run in runs:
        hour = bucket_of(int(run.started), "hour")
        seen = keys.setdefault((hour, run.platform), set())
        if seen - {run.key_id} and confirmations.get((hour, run.platform, country, asn), set()) & (
            wanted
        ):
            return run.first_failure or run.started
        seen.add(run.key_id)
    return None


def _at(seconds: float) -> datetime:
    whole = int(seconds)
    return to_datetime(whole) + timedelta(microseconds=round((seconds - whole) * 1e6))


def find_incident(conn: Connection, incident_id: str, query: ReportQuery) -> Incident | None:
    """The incident with this id among those of ``query``'s window."""
    return next((i for i in incidents(conn, query) if i.id == incident_id), None)


def latest_run(conn: Connection) -> datetime | None:
    """The time of the latest stored run (reports default to windows ending there)."""
    latest = conn.execute(select(func.max(report_runs.c.started))).scalar()
    return None if latest is None else _at(float(latest))


def data_end(conn: Connection) -> datetime | None:
    """The end of a window holding the latest run: just after it, never past the current hour."""
    latest = latest_run(conn)
    if latest is None:
        return None
    return min(latest + timedelta(seconds=1), current_bucket_end("hour"))
