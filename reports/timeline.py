"""The dashboard's timeline data: per network, each time bucket's state, runs, probes, latest state.

Two readers fill the same ``Network`` rows. ``from_runs`` reads every run of the window
(``report_runs``): used when buckets are shorter than five minutes (a demo's minutes), where a
window holds few runs. ``from_series`` reads ``report_series`` (runs per platform and 5-minute or
hour bucket, kept at ingest) for the whole buckets of the window, and the runs themselves only
for the partial buckets at its two ends, the failing runs' methods (tooltips) and each network's
latest runs; so a window of days reads a few rows per network and bucket however many runs it
holds.

A bucket's state (``bucket_state``): ``outage`` when at least half of the network's runs saw the
network itself down (``outage.local``); otherwise the worst platform state, each platform's being
its runs' majority (``reports.query.state_of``). Probes per country are the keys that measured
in the window: from the runs in ``from_runs``, from ``report_probes`` (keys seen per hour and
day) over the hours the window touches in ``from_series``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    func,
    or_,
    select,
    union,
)

from collectors.network_series import report_network_series
from collectors.rollup_tables import report_probes
from collectors.runs import report_runs
from collectors.series import WIDTHS, SeriesGrain, report_series
from probe.model.verdict import SEVERITY, VERDICTS
from reports.asnames import operator
from reports.incidents import RUN_COLUMNS, Located, Run, as_run
from reports.model import ReportQuery
from reports.query import state_of

_INDEX: dict[str, int] = {name: i for i, name in enumerate(VERDICTS)}


@dataclass
class Tally:
    """One network's runs in one bucket: all, network down, per platform verdicts and methods.

    ``verdicts`` counts each platform's runs (not network-down) in ``VERDICTS`` order; or, from
    a ``report_network_series`` row, ``packed`` holds each platform's state (``platform=state,...``,
    read when a tooltip needs them) and ``worst`` the worst, and no run is added.
    """

    runs: int = 0
    down: int = 0
    verdicts: dict[str, list[int]] = field(default_factory=dict)
    methods: dict[str, dict[str, int]] = field(default_factory=dict)
    packed: str | None = None
    worst: str | None = None

    def add_run(self, run: Run) -> None:
        assert self.packed is None, "a bucket of platform states takes no runs"
        self.runs += 1
        if run.network_down:
            self.down += 1
            return
        counts = self.verdicts.get(run.platform)
        if counts is None:
            counts = self.verdicts[run.platform] = [0, 0, 0, 0, 0]
        counts[_INDEX[run.verdict]] += 1
        if run.method:
            self.add_method(run.platform, run.method)

    def add_method(self, platform: str, method: str) -> None:
        mine = self.methods.setdefault(platform, {})
        mine[method] = mine.get(method, 0) + 1


def _states(tally: Tally) -> dict[str, str]:
    if tally.packed is not None:
        return dict(item.split("=", 1) for item in tally.packed.split(",") if item)
    found: dict[str, str] = {}
    for name, (r, b, t, o, i) in tally.verdicts.items():
        n = r + b + t + o + i
        if n:
            found[name] = state_of(n, r, b, t, o, False)
    return found


def bucket_state(tally: Tally) -> str:
    """A network's state in one bucket (module docstring)."""
    if 2 * tally.down >= tally.runs:
        return "outage"
    if tally.worst is not None:
        return tally.worst
    return min(_states(tally).values(), key=SEVERITY.index)


def bucket_tip(tally: Tally) -> str:
    """A tooltip naming each platform's state in the bucket, with the most frequent method of a
    platform not reachable (ties: the earliest seen)."""
    if 2 * tally.down >= tally.runs:
        return f"network down ({tally.down} of {tally.runs} runs: outage.local)"
    parts = []
    states = _states(tally)
    for name in sorted(states):
        methods = tally.methods.get(name)
        if methods and states[name] != "reachable":
            method = max(methods.items(), key=lambda kv: kv[1])[0]
            parts.append(f"{name}: {states[name]} ({method})")
        else:
            parts.append(f"{name}: {states[name]}")
    return "; ".join(parts)


@dataclass
class Network:
    """One network's row: its buckets' tallies, runs, probe keys and latest runs' state."""

    country: str
    asn: int
    name: str | None = None
    buckets: dict[float, Tally] = field(default_factory=dict)
    runs: int = 0
    keys: set[str] = field(default_factory=set)
    latest: Tally = field(default_factory=Tally)
    rates: dict[str, list[Run]] = field(default_factory=dict)  # platform: runs with a rate

    @property
    def key(self) -> str:
        return f"{self.country} AS{self.asn}"

    @property
    def title(self) -> str:
        return self.name or f"AS{self.asn}"


def _sorted(found: dict[tuple[str, int], Network]) -> list[Network]:
    for net in found.values():
        net.name = operator(net.asn, net.name)
    return sorted(found.values(), key=lambda n: (n.country, n.title.lower(), n.asn))


def from_runs(located: Sequence[Located], bucket: int) -> list[Network]:
    """The networks of ``located`` (the window's runs, in time order), in ``bucket`` seconds."""
    found: dict[tuple[str, int], Network] = {}
    last: dict[tuple[str, int], float] = {}
    for country, asn, run in located:
        net = found.get((country, asn))
        if net is None:
            net = found[(country, asn)] = Network(country, asn)
        net.buckets.setdefault(run.started - run.started % bucket, Tally()).add_run(run)
        net.runs += 1
        net.keys.add(run.key_id)
        if run.label:
            net.name = run.label
        if run.kbps is not None:
            net.rates.setdefault(run.platform, []).append(run)
        last[(country, asn)] = max(last.get((country, asn), run.started), run.started)
    for country, asn, run in located:
        if run.started >= last[(country, asn)] - 1:
            found[(country, asn)].latest.add_run(run)
    return _sorted(found)


def _filters(table: Table, query: ReportQuery, platform: bool = True) -> list[ColumnElement[bool]]:
    c = table.c
    clauses: list[ColumnElement[bool]] = []
    if platform and query.platform is not None:
        clauses.append(c.platform == query.platform)
    if query.country is not None:
        clauses.append(c.country == query.country)
    if query.asn is not None:
        clauses.append(c.asn == query.asn)
    return clauses


def from_series(
    conn: Connection, query: ReportQuery, since: float, end: float, bucket: int
) -> list[Network]:
    """The networks of the runs in ``[since, end)``, in ``bucket`` seconds (a multiple of 300).

    Whole buckets of the widest ``report_series`` grain that divides ``bucket`` come from the
    rollup, summed per bucket in the database (buckets of that grain, every platform: one
    ``report_network_series`` row per network and bucket); the partial ones at both ends from
    the runs. A network is named by the label of its latest run that has one.
    """
    grain = max((g for g in WIDTHS if bucket % WIDTHS[g] == 0), key=WIDTHS.__getitem__)
    width = WIDTHS[grain]
    lo = -(-int(since) // width) * width  # the first whole bucket
    hi = int(end) // width * width  # the end of the last whole bucket
    if hi <= lo:
        lo = hi = int(since)
    found: dict[tuple[str, int], Network] = {}

    def network(country: str, asn: int) -> Network:
        net = found.get((country, asn))
        if net is None:
            net = found[(country, asn)] = Network(country, asn)
        return net

    if width == bucket and query.platform is None:
        _whole_states(conn, query, grain, lo, hi, network)
    else:
        _whole_sums(conn, query, grain, lo, hi, bucket, network)
    r = report_runs.c
    edges = or_(
        and_(r.started >= since, r.started < lo),
        and_(r.started >= hi, r.started < end),
    )
    for country, asn, *rest in conn.execute(
        select(r.country, r.asn, *RUN_COLUMNS)
        .where(edges, *_filters(report_runs, query))
        .order_by(r.started, r.bundle_digest)
    ):
        run = as_run(rest)
        net = network(country, asn)
        net.buckets.setdefault(run.started - run.started % bucket, Tally()).add_run(run)
        net.runs += 1
        net.keys.add(run.key_id)
        if run.label:
            net.name = run.label
    _methods(conn, query, found, since, lo, hi, end, bucket)
    _keys(conn, query, found, since, end)
    _latest(conn, query, found, end)
    return _sorted(found)


def _whole_sums(
    conn: Connection,
    query: ReportQuery,
    grain: SeriesGrain,
    lo: int,
    hi: int,
    bucket: int,
    network: Callable[[str, int], Network],
) -> None:
    """Tallies of the whole buckets, each platform's series rows summed in the database."""
    s = report_series.c
    at = (s.bucket - s.bucket % bucket).label("at")
    rows = conn.execute(  # summed per display bucket in the database
        select(s.country, s.asn, s.platform, at, func.sum(s.runs), func.sum(s.network_down))
        .add_columns(func.max(s.label), *(func.sum(s[v]) for v in VERDICTS))
        .where(s.grain == grain, s.bucket >= lo, s.bucket < hi, *_filters(report_series, query))
        .group_by(s.country, s.asn, s.platform, at)
    )
    for country, asn, platform, start, runs, down, label, *counts in rows:
        net = network(country, asn)
        tally = net.buckets.get(start)
        if tally is None:
            tally = net.buckets[start] = Tally()
        tally.runs += runs
        tally.down += down
        if runs > down:
            mine = tally.verdicts.get(platform)
            if mine is None:
                tally.verdicts[platform] = [int(n) for n in counts]
            else:
                for i, n in enumerate(counts):
                    mine[i] += int(n)
        net.runs += runs
        if label:
            net.name = label


def _whole_states(
    conn: Connection,
    query: ReportQuery,
    grain: SeriesGrain,
    lo: int,
    hi: int,
    network: Callable[[str, int], Network],
) -> None:
    """Tallies of the whole buckets, one network row each (``report_network_series``): every
    platform's state, and the worst, kept at ingest."""
    n = report_network_series.c
    rows = conn.execute(
        select(n.country, n.asn, n.bucket, n.runs, n.network_down, n.label, n.states, n.worst)
        .where(n.grain == grain, n.bucket >= lo, n.bucket < hi)
        .where(*_filters(report_network_series, query, platform=False))
    )
    for country, asn, start, runs, down, label, states, rank in rows:
        net = network(country, asn)
        worst = None if rank is None else SEVERITY[rank]
        net.buckets[start] = Tally(runs, down, packed=states, worst=worst)
        net.runs += runs
        if label:
            net.name = label


def _methods(
    conn: Connection,
    query: ReportQuery,
    found: dict[tuple[str, int], Network],
    since: float,
    lo: int,
    hi: int,
    end: float,
    bucket: int,
) -> None:
    """The failing runs' methods of the whole buckets (only failing runs have a method)."""
    r = report_runs.c
    for country, asn, platform, started, method in conn.execute(
        select(r.country, r.asn, r.platform, r.started, r.method)
        .where(r.failing == 1, r.started >= lo, r.started < hi, r.network_down == 0)
        .where(r.method.is_not(None), *_filters(report_runs, query))
        .order_by(r.started, r.bundle_digest)
    ):
        net = found.get((country, asn))
        if net is not None:
            net.buckets[started - started % bucket].add_method(platform, method)


def _keys(
    conn: Connection,
    query: ReportQuery,
    found: dict[tuple[str, int], Network],
    since: float,
    end: float,
) -> None:
    """The keys that measured in the hours the window touches (days where it covers them)."""
    hour, day = 3600, 86400
    first, stop = int(since) // hour * hour, -(-int(end) // hour) * hour
    day_lo, day_hi = -(-first // day) * day, stop // day * day
    p = report_probes.c
    ranges = [("day", day_lo, day_hi), ("hour", first, min(day_lo, stop))]
    ranges.append(("hour", max(day_hi, first), stop))
    if day_hi <= day_lo:
        ranges = [("hour", first, stop)]
    each = [  # one index-only range scan each (report_probes_keys)
        select(p.country, p.asn, p.key_id).where(
            p.grain == g,
            p.bucket >= a,
            p.bucket < b,
            p.family == "",
            *_filters(report_probes, query),
        )
        for g, a, b in ranges
        if a < b
    ]
    for country, asn, key_id in conn.execute(union(*each)):
        net = found.get((country, asn))
        if net is not None:
            net.keys.add(key_id)


def _latest(
    conn: Connection,
    query: ReportQuery,
    found: dict[tuple[str, int], Network],
    end: float,
) -> None:
    """Each network's runs within a second of its last one before ``end``.

    The last one is in the network's last bucket with runs: one statement reads those buckets,
    from a second before each.
    """
    if not found:
        return
    r = report_runs.c
    clauses = []
    for (country, asn), net in found.items():
        lo = (max(net.buckets) if net.buckets else end) - 1
        clauses.append(and_(r.country == country, r.asn == asn, r.started >= lo))
    located: dict[tuple[str, int], list[Run]] = {}
    for country, asn, *rest in conn.execute(
        select(r.country, r.asn, *RUN_COLUMNS)
        .where(or_(*clauses), r.started < end, *_filters(report_runs, query))
        .order_by(r.started, r.bundle_digest)
    ):
        located.setdefault((country, asn), []).append(as_run(rest))
    for key, runs in located.items():
        last = max(run.started for run in runs)
        for run in runs:
            if run.started >= last - 1:
                found[key].latest.add_run(run)
        labels = [run.label for run in runs if run.label]
        if labels:  # the latest run's label names the network
            found[key].name = labels[-1]


def rates(conn: Connection, net: Network, platform: str, since: float, end: float) -> list[Run]:
    """The runs of ``platform`` in ``net`` with a measured transfer rate, in time order."""
    if platform in net.rates:
        return net.rates[platform]
    r = report_runs.c
    rows = conn.execute(
        select(*RUN_COLUMNS)
        .where(r.country == net.country, r.asn == net.asn, r.platform == platform)
        .where(r.started >= since, r.started < end, r.kbps.is_not(None))
        .order_by(r.started, r.bundle_digest)
    )
    net.rates[platform] = [as_run(row) for row in rows]
    return net.rates[platform]
