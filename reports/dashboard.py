"""The dashboard: one self-contained HTML page (inline CSS and SVG, no script, works offline).

- a timeline row per network (operator name, ASN, country), coloured by verdict over time, with
  the incidents marked on it (each links to its row in the incident list);
- for throttles, the measured transfer rate against the same-path control's, run by run;
- a summary per country, and the incident list with links to the signed bundles' pages.

Colours come from the probes' runs (``collectors.runs``) in buckets sized to the data shown: from
one second (a demo's minutes) through 5 and 15 minutes (a day or two) to a day. In a bucket, each
platform's state is its runs' majority (``reports.query.state_of``); the row shows the worst
platform, or ``outage`` when most runs saw the network itself down; a state is drawn on until the
next runs (over gaps up to an hour; longer gaps stay grey). The window ends at the latest run
stored, so a page written from an old database still shows its data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from sqlalchemy import Connection, func, select

from collectors.runs import report_runs
from reports.evidence_page import COLOURS, Links
from reports.incidents import Run, data_end, incidents, window_runs
from reports.model import Incident, ReportQuery
from reports.timeline import (
    Network,
    Tally,
    bucket_state,
    bucket_tip,
    from_runs,
    from_series,
    rates,
)

ORDER = ("blocked", "throttled", "outage", "inconclusive", "reachable")
BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)  # seconds
MAX_BUCKETS = 240
FILTERS = ("platform", "country", "asn")
SERIES_BUCKET = 300  # buckets of whole 5 minutes are read from report_series
CARRY = 3600  # a state is drawn until the next runs, over gaps of at most this (seconds)
WIDTH, LABEL, ROW = 1000, 230, 30
CHARTS = 6
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:76em;padding:1.2em;
color:#212121;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.5em 0 .4em}
table{border-collapse:collapse;margin:.3em 0}th,td{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f0f0f0}
.legend span{display:inline-block;padding:.1em .55em;margin-right:.4em;color:#fff;border-radius:3px}
.muted{color:#757575}.chip{display:inline-block;color:#fff;padding:0 .4em;border-radius:3px;
margin:.1em}.unconfirmed{color:#ef6c00;font-weight:600}.confirmed{color:#2e7d32;font-weight:600}
svg text{font:11px system-ui,sans-serif}svg a:hover rect{opacity:.8}
tr:target{background:#fff8e1}code{font-size:.9em}
"""


def render(
    conn: Connection,
    *,
    hours: int = 48,
    country: str | None = None,
    asn: int | None = None,
    platform: str | None = None,
    until: datetime | None = None,
    generated_at: datetime | None = None,
    links: Links = Links(served=True),
) -> str:
    """The dashboard over the ``hours`` before ``until`` (default: the latest run stored)."""
    generated = generated_at or datetime.now(UTC)
    end = until or data_end(conn)
    if end is None:
        return _page("No measurements stored yet.", "", generated)
    since = end - timedelta(hours=hours)
    query = ReportQuery(since=since, until=end, country=country, asn=asn, platform=platform)
    start, stop = since.timestamp(), end.timestamp()
    span = _span_of(conn, query, start, stop)
    if span is None:
        return _page(f"No runs between {_time(since)} and {_time(end)} UTC.", "", generated)
    found = incidents(conn, query)
    first, last = span
    for inc in found:
        first = min(first, inc.started_at.timestamp())
    bucket = next((b for b in BUCKETS if (last - first) / b <= MAX_BUCKETS), BUCKETS[-1])
    if bucket % SERIES_BUCKET:  # seconds: few runs, read them all
        located = [x for x in window_runs(conn, query) if x[2].started >= start]
        networks = from_runs(located, bucket)
    else:
        networks = from_series(conn, query, start, stop, bucket)
    axis = Axis(first - first % bucket, last - last % bucket + bucket, bucket)
    what = f"platform {platform}" if platform else "every platform (a row shows its worst)"
    window = (
        f"{_time(datetime.fromtimestamp(axis.start, UTC))} to"
        f" {_time(datetime.fromtimestamp(axis.end, UTC))} UTC, {_span(bucket)} buckets, {what}"
    )
    body = "\n".join(
        [
            _legend(),
            _timeline(networks, found, axis),
            _throughput(conn, found, networks, axis, (start, stop)),
            _countries(networks, found),
            _incident_table(found, links),
        ]
    )
    return _page(window, body, generated)


def _span_of(
    conn: Connection, query: ReportQuery, start: float, stop: float
) -> tuple[float, float] | None:
    """The first and last run start in ``[start, stop)`` under the query's filters."""
    r = report_runs.c
    clauses = [r.started >= start, r.started < stop]
    clauses += [r[k] == getattr(query, k) for k in FILTERS if getattr(query, k) is not None]
    first, last = conn.execute(  # one aggregate each: an index's first and last entry
        select(
            select(func.min(r.started)).where(*clauses).scalar_subquery(),
            select(func.max(r.started)).where(*clauses).scalar_subquery(),
        )
    ).one()
    return None if first is None else (float(first), float(last))


@dataclass(frozen=True)
class Axis:
    start: float
    end: float
    bucket: int

    def x(self, seconds: float) -> float:
        span = max(self.end - self.start, 1.0)
        return LABEL + (min(max(seconds, self.start), self.end) - self.start) / span * (
            WIDTH - LABEL
        )


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}-second"
    if seconds < 3600:
        return f"{seconds // 60}-minute"
    if seconds < 86400:
        return f"{seconds // 3600}-hour"
    return "1-day"


def _page(window: str, body: str, generated: datetime) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>blockprobe: platform reachability</title><style>{CSS}</style></head><body>"
        "<h1>blockprobe: is the platform reachable?</h1>"
        f"<p class=muted id=window>{escape(window)}. Generated {_time(generated)} UTC.</p>"
        f"{body}</body></html>\n"
    )


def _legend() -> str:
    items = "".join(
        f"<span style='background:{COLOURS[k]}'>{k}</span>" for k in ORDER if k in COLOURS
    )
    return (
        f"<p class=legend>{items} <span style='background:#fff;color:#212121;"
        "border:2px solid #212121'>incident</span></p>"
    )


def _timeline(networks: list[Network], found: list[Incident], axis: Axis) -> str:
    marks: dict[tuple[str, int], list[Incident]] = defaultdict(list)
    for inc in found:
        marks[(inc.country, inc.asn)].append(inc)
    height = ROW * len(networks) + 30
    parts = [
        "<h2>Timeline per network</h2>",
        f"<svg id=timeline xmlns='http://www.w3.org/2000/svg' width='{WIDTH}'"
        f" height='{height}' role='img' aria-label='verdict per network over time'>",
    ]
    for i, net in enumerate(networks):
        y = i * ROW
        parts.append(
            f"<g class=network-row data-network='{escape(net.key)}'"
            f" data-name='{escape(net.title)}'>"
            f"<text x='0' y='{y + 13}' font-weight='600'>{escape(_clip(net.title, 30))}</text>"
            f"<text x='0' y='{y + 25}' fill='#757575'>AS{net.asn} · {net.country}</text>"
            f"<rect x='{LABEL}' y='{y + 4}' width='{WIDTH - LABEL}' height='{ROW - 8}'"
            " fill='#eeeeee'/>"
        )
        parts.extend(_segments(net, axis, y))
        parts.extend(_mark(inc, axis, y) for inc in marks.get((net.country, net.asn), []))
        parts.append("</g>")
    parts.append(_ticks(axis, ROW * len(networks)))
    parts.append("</svg>")
    return "\n".join(parts)


def _segments(net: Network, axis: Axis, y: int) -> list[str]:
    buckets = net.buckets
    spans: list[Segment] = []
    for start in sorted(buckets):
        tally = buckets[start]
        state = bucket_state(tally)
        if spans and spans[-1].end < start <= spans[-1].end + CARRY:
            spans[-1].end = start  # the state held until the next runs
        if spans and spans[-1].state == state and spans[-1].end == start:
            spans[-1].end = start + axis.bucket
            spans[-1].tips.append(tally)
        else:
            spans.append(Segment(start, start + axis.bucket, state, [tally]))
    out = []
    for seg in spans:
        x0, x1 = axis.x(seg.start), axis.x(seg.end)
        since = _time(datetime.fromtimestamp(seg.start, UTC))
        last = bucket_tip(seg.tips[-1])
        title = f"{seg.state} from {since} UTC ({len(seg.tips)} x {_span(axis.bucket)}): {last}"
        out.append(
            f"<rect class=state data-state='{seg.state}' x='{x0:.1f}' y='{y + 4}'"
            f" width='{max(x1 - x0, 1.5):.1f}' height='{ROW - 8}' fill='{COLOURS[seg.state]}'>"
            f"<title>{escape(title)}</title></rect>"
        )
    return out


@dataclass
class Segment:
    """Consecutive buckets of one state in one network's row."""

    start: float
    end: float
    state: str
    tips: list[Tally]  # its buckets' (the tooltip describes the last)


def _mark(inc: Incident, axis: Axis, y: int) -> str:
    start = inc.started_at.timestamp()
    stop = inc.ended_at.timestamp() if inc.ended_at else axis.end
    x0, x1 = axis.x(start), axis.x(max(stop, start))
    what = inc.kind if inc.scope == "platform" else "network outage"
    subject = inc.platform or "every platform"
    ended = _time(inc.ended_at) + " UTC" if inc.ended_at else "ongoing"
    tip = f"{what} of {subject} ({inc.method}) from {_time(inc.started_at)} UTC to {ended}"
    dashed = "" if inc.confirmed else " stroke-dasharray='4 2'"
    return (
        f"<a class=incident-mark href='#incident-{inc.id}' data-incident='{inc.id}'"
        f" data-kind='{inc.kind}'><rect x='{x0:.1f}' y='{y + 2}' width='{max(x1 - x0, 3):.1f}'"
        f" height='{ROW - 4}' fill='none' stroke='#212121' stroke-width='2'{dashed}>"
        f"<title>{escape(tip)}</title></rect></a>"
    )


def _ticks(axis: Axis, y: int) -> str:
    out = []
    for i in range(6):
        at = axis.start + (axis.end - axis.start) * i / 5
        x = axis.x(at)
        moment = datetime.fromtimestamp(at, UTC)
        label = moment.strftime("%H:%M:%S" if axis.bucket < 60 else "%m-%d %H:%M")
        anchor = "start" if i == 0 else ("end" if i == 5 else "middle")
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{y + 4}' stroke='#bdbdbd'"
            " stroke-width='0.5'/>"
            f"<text x='{x:.1f}' y='{y + 18}' text-anchor='{anchor}'>{label}</text>"
        )
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _throughput(
    conn: Connection,
    found: list[Incident],
    networks: list[Network],
    axis: Axis,
    window: tuple[float, float],
) -> str:
    throttles = [i for i in found if i.kind == "throttled"][:CHARTS]
    if not throttles:
        return ""
    by_network = {(net.country, net.asn): net for net in networks}
    parts = ["<h2>Throttling: transfer rate against the same-path control</h2>"]
    for inc in throttles:
        net = by_network.get((inc.country, inc.asn))
        points = rates(conn, net, inc.platform or "", *window) if net else []
        parts.append(_rate_chart(inc, points, axis))
    return "\n".join(parts)


def _rate_chart(inc: Incident, points: list[Run], axis: Axis) -> str:
    height, top = 160, 10
    peak = max([p.kbps or 0 for p in points] + [p.control_kbps or 0 for p in points] + [1.0])

    def y(kbps: float) -> float:
        return top + (height - top) * (1 - kbps / peak)

    def line(values: list[tuple[float, float]], css: str, colour: str) -> str:
        if not values:
            return ""
        coords = " ".join(f"{axis.x(t):.1f},{y(v):.1f}" for t, v in values)
        dots = "".join(
            f"<circle cx='{axis.x(t):.1f}' cy='{y(v):.1f}' r='3' fill='{colour}'>"
            f"<title>{_time(datetime.fromtimestamp(t, UTC))} UTC: {v:.0f} kbps</title></circle>"
            for t, v in values
        )
        return (
            f"<g class='{css}'><polyline points='{coords}' fill='none' stroke='{colour}'"
            f" stroke-width='2'/>{dots}</g>"
        )

    platform = [(p.started, p.kbps) for p in points if p.kbps is not None]
    control = [(p.started, p.control_kbps) for p in points if p.control_kbps is not None]
    start = inc.started_at.timestamp()
    stop = (inc.ended_at or inc.last_seen_at).timestamp()
    shade = (
        f"<rect x='{axis.x(start):.1f}' y='{top}'"
        f" width='{max(axis.x(stop) - axis.x(start), 3):.1f}'"
        f" height='{height - top}' fill='#ef6c00' opacity='0.12'/>"
    )
    title = (
        f"{escape(inc.platform or '')} in {escape(inc.network or '')} AS{inc.asn}"
        f" ({escape(inc.method or '')})"
    )
    return (
        f"<h3>{title}</h3><svg class=throughput data-incident='{inc.id}'"
        f" xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height + 24}' role='img'>"
        f"<rect x='{LABEL}' y='{top}' width='{WIDTH - LABEL}' height='{height - top}'"
        f" fill='#f5f5f5'/>{shade}"
        f"<text x='{LABEL - 6}' y='{top + 10}' text-anchor='end'>{peak:.0f} kbps</text>"
        f"<text x='{LABEL - 6}' y='{height}' text-anchor='end'>0</text>"
        f"{line(control, 'control-rate', '#616161')}{line(platform, 'platform-rate', '#ef6c00')}"
        f"<text x='{LABEL}' y='{height + 18}' fill='#ef6c00'>&#9632; {escape(inc.platform or '')}"
        f"</text><text x='{LABEL + 120}' y='{height + 18}' fill='#616161'>&#9632; same path,"
        " another name (control)</text></svg>"
    )


def _countries(networks: list[Network], found: list[Incident]) -> str:
    by_country: dict[str, list[Network]] = defaultdict(list)
    for net in networks:
        by_country[net.country].append(net)
    ongoing: dict[str, Counter[str]] = defaultdict(Counter)
    for inc in found:
        if inc.ended_at is None:
            kind = inc.kind if inc.scope == "platform" else "network outage"
            ongoing[inc.country][kind] += 1
    rows = []
    for cc in sorted(by_country):
        nets = by_country[cc]
        probes = len({key for n in nets for key in n.keys})
        runs = sum(n.runs for n in nets)
        chips = []
        for net in nets:
            state, tip = bucket_state(net.latest), bucket_tip(net.latest)
            chips.append(
                f"<span class=chip data-network='{escape(net.key)}' data-state='{state}'"
                f" style='background:{COLOURS[state]}' title='{escape(tip)}'>"
                f"{escape(net.title)} {state}</span>"
            )
        now = ", ".join(f"{n} {k}" for k, n in sorted(ongoing[cc].items())) or "none"
        rows.append(
            f"<tr data-country='{cc}'><td>{cc}</td><td>{len(nets)}</td><td>{probes}</td>"
            f"<td>{runs}</td><td>{escape(now)}</td><td>{''.join(chips)}</td></tr>"
        )
    head = (
        "<tr><th>country</th><th>networks</th><th>probes</th><th>runs</th>"
        "<th>ongoing incidents</th><th>latest, per network</th></tr>"
    )
    return f"<h2>Countries</h2><table id=countries>{head}{''.join(rows)}</table>"


def _incident_table(found: list[Incident], links: Links) -> str:
    if not found:
        return "<h2>Incidents</h2><p class=muted id=incidents>No incidents in this window.</p>"
    head = (
        "<tr><th>what</th><th>network</th><th>started (first failing)</th>"
        "<th>ended (first good after)</th><th>probes / runs</th><th>confirmed</th>"
        "<th>evidence</th></tr>"
    )
    rows = []
    for inc in found:
        evidence = " ".join(
            f"<a class=bundle-link href='{links.bundle(d)}'>{d[:10]}</a>"
            for d in inc.sample_digests
        )
        what = (
            f"{inc.platform} {inc.kind}"
            if inc.scope == "platform"
            else "network outage (every platform)"
        )
        ended = _time(inc.ended_at) if inc.ended_at else "ongoing"
        before = (
            f"<br><small class=muted>last good {_time(inc.last_good_before)}</small>"
            if inc.last_good_before
            else ""
        )
        confirmed = (
            "<span class=confirmed>yes</span>"
            if inc.confirmed
            else "<span class=unconfirmed>unconfirmed</span>"
        )
        rows.append(
            f"<tr class=incident id='incident-{inc.id}' data-incident='{inc.id}'"
            f" data-platform='{escape(inc.platform or '')}' data-scope='{inc.scope}'"
            f" data-network='{inc.country} AS{inc.asn}' data-kind='{inc.kind}'"
            f" data-confirmed='{str(inc.confirmed).lower()}'>"
            f"<td style='color:{COLOURS[inc.kind]};font-weight:600'>{escape(what)}"
            f"<br><small>{escape(inc.method or '')}</small></td>"
            f"<td>{escape(inc.network or '')} AS{inc.asn} {inc.country}</td>"
            f"<td>{_time(inc.started_at)}{before}</td><td>{ended}</td>"
            f"<td>{inc.probes} / {inc.runs}</td><td>{confirmed}</td>"
            f"<td>{evidence}<br><small><code>blockprobe report evidence {inc.id}"
            " --output DIR</code></small></td></tr>"
        )
    note = (
        "<p class=muted>Times are the measurements' own (UTC). A dashed outline marks an"
        " incident that two probes have not confirmed yet.</p>"
    )
    return f"<h2>Incidents</h2>{note}<table id=incidents>{head}{''.join(rows)}</table>"
