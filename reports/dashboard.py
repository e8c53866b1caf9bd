"""The dashboard: one self-contained HTML page (inline CSS and SVG, no script, works offline).

A platform x network grid coloured by each cell's latest verdict, with a link to a signed bundle
behind it; per platform, a timeline of verdict shares per hour and the method breakdown; and the
incident list. The window ends at the latest hour holding data, so a page written from an old
database still shows its data.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html import escape

from sqlalchemy import Connection, func, select

from reports.incidents import incidents
from reports.model import Incident, ReachabilityRow, ReportQuery
from reports.query import reachability, to_datetime
from reports.tables import report_cells

COLOURS = {
    "reachable": "#2e7d32",
    "blocked": "#c62828",
    "throttled": "#ef6c00",
    "outage": "#6a1b9a",
    "inconclusive": "#757575",
}
ORDER = ("blocked", "throttled", "outage", "inconclusive", "reachable")
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#212121;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.3em 0}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#eee}
td.cell{color:#fff;font-weight:600;min-width:8em}td.cell a{color:#fff}
td.cell small{display:block;font-weight:400}
.legend span{display:inline-block;padding:.1em .5em;margin-right:.4em;color:#fff;border-radius:3px}
.timeline{margin-bottom:1em}.muted{color:#757575}
"""


def latest_hour(conn: Connection) -> datetime | None:
    """The start of the latest hour bucket holding data."""
    c = report_cells.c
    latest = conn.execute(select(func.max(c.bucket)).where(c.grain == "hour")).scalar()
    return None if latest is None else to_datetime(int(latest))


def render(
    conn: Connection,
    *,
    hours: int = 48,
    country: str | None = None,
    asn: int | None = None,
    until: datetime | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The dashboard page over the ``hours`` before ``until`` (default: the latest data)."""
    end = until or latest_hour(conn)
    generated = generated_at or datetime.now(UTC)
    if end is None:
        return _page("No measurements stored yet.", "", generated)
    if until is None:
        end += timedelta(hours=1)
    query = ReportQuery.window(
        since=end - timedelta(hours=hours), until=end, bucket="hour", country=country, asn=asn
    )
    rows = reachability(conn, query)
    found = incidents(conn, query)
    window = f"{_time(query.since)} to {_time(query.until)} (UTC, hourly buckets)"
    body = "\n".join([_legend(), _grid(rows), _timelines(rows, query), _incidents(found)])
    return _page(window, body, generated)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _page(window: str, body: str, generated: datetime) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>blockprobe reachability</title><style>{CSS}</style></head><body>"
        "<h1>blockprobe: platform reachability</h1>"
        f"<p class=muted id=window>{escape(window)}. Generated {_time(generated)} UTC.</p>"
        f"{body}</body></html>\n"
    )


def _legend() -> str:
    items = "".join(f"<span style='background:{COLOURS[k]}'>{k}</span>" for k in ORDER)
    return f"<p class=legend>{items}</p>"


def _network(row: ReachabilityRow | Incident) -> str:
    return f"{row.country} AS{row.asn}"


def _grid(rows: list[ReachabilityRow]) -> str:
    latest: dict[tuple[str, str], ReachabilityRow] = {}
    for row in rows:  # ordered by bucket within a series: the last one wins
        latest[(_network(row), row.platform)] = row
    platforms = sorted({p for _, p in latest})
    networks = sorted({n for n, _ in latest})
    head = "".join(f"<th>{escape(p)}</th>" for p in platforms)
    lines = [f"<h2>Current verdict by network</h2><table id=grid><tr><th>network</th>{head}</tr>"]
    for net in networks:
        cells = []
        for platform in platforms:
            cell = latest.get((net, platform))
            if cell is None:
                cells.append("<td class=muted>no data</td>")
                continue
            row = cell
            detail = row.dominant_method or ""
            if row.network_outage:
                detail = "network outage"
            mark = " &#10003; confirmed" if row.confirmed else ""
            title = (
                f"{row.measurements} measurements, {row.probes} probes, hour of "
                f"{_time(row.bucket_start)}"
            )
            cells.append(
                f"<td class=cell data-platform='{escape(platform)}' data-network='{escape(net)}'"
                f" data-state='{row.state}' style='background:{COLOURS[row.state]}'"
                f" title='{escape(title)}'>"
                f"<a href='/api/v1/bundles/{row.sample_digest}'>{row.state}</a>"
                f"<small>{escape(detail)}{mark}</small>"
                f"<small>probes {row.probes}, measurements {row.measurements}</small></td>"
            )
        lines.append(f"<tr><th>{escape(net)}</th>{''.join(cells)}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _timelines(rows: list[ReachabilityRow], query: ReportQuery) -> str:
    by_platform: dict[str, dict[datetime, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(ORDER, 0))
    )
    methods: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts = by_platform[row.platform][row.bucket_start]
        for kind in ORDER:
            counts[kind] += getattr(row, kind)
        for name, n in row.methods.items():
            methods[row.platform][name] += n
    first = min((row.bucket_start for row in rows), default=query.since)  # trim empty hours
    parts = ["<h2>Timeline per platform (share of verdicts per hour, all networks)</h2>"]
    for platform in sorted(by_platform):
        parts.append(f"<div class=timeline id='timeline-{escape(platform)}'>")
        parts.append(f"<h3>{escape(platform)}</h3>")
        parts.append(_svg(by_platform[platform], first, query.until))
        breakdown = sorted(methods[platform].items(), key=lambda kv: (-kv[1], kv[0]))
        if breakdown:
            cells = "".join(f"<tr><td>{escape(m)}</td><td>{n}</td></tr>" for m, n in breakdown)
            parts.append(
                f"<table class=methods><tr><th>method</th><th>measurements</th></tr>{cells}</table>"
            )
        else:
            parts.append("<p class=muted>no failing methods in this window</p>")
        parts.append("</div>")
    return "\n".join(parts)


def _svg(series: dict[datetime, dict[str, int]], since: datetime, until: datetime) -> str:
    width, height, left = 760, 110, 40
    hours = max(1, int((until - since).total_seconds() // 3600))
    step = (width - left) / hours
    shapes = []
    for moment, counts in sorted(series.items()):
        total = sum(counts.values())
        if not total:
            continue
        x = left + (moment - since).total_seconds() / 3600 * step
        y = float(height)
        for kind in reversed(ORDER):  # reachable at the bottom
            if not counts[kind]:
                continue
            h = height * counts[kind] / total
            y -= h
            tip = f"{_time(moment)}: {kind} {counts[kind]}/{total}"
            shapes.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(step - 0.5, 0.5):.1f}'"
                f" height='{h:.1f}' fill='{COLOURS[kind]}'><title>{tip}</title></rect>"
            )
    axis = (
        f"<text x='0' y='12' font-size='10'>100%</text>"
        f"<text x='0' y='{height}' font-size='10'>0%</text>"
        f"<text x='{left}' y='{height + 14}' font-size='10'>{_time(since)}</text>"
        f"<text x='{width}' y='{height + 14}' font-size='10' text-anchor='end'>"
        f"{_time(until)}</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 20}'"
        f" role='img'><rect x='{left}' y='0' width='{width - left}' height='{height}'"
        f" fill='#eee'/>{''.join(shapes)}{axis}</svg>"
    )


def _incidents(found: list[Incident]) -> str:
    if not found:
        return "<h2>Incidents</h2><p class=muted id=incidents>No incidents in this window.</p>"
    head = (
        "<tr><th>platform</th><th>network</th><th>kind</th><th>method</th><th>started</th>"
        "<th>ended</th><th>probes</th><th>measurements</th><th>confirmed</th><th>bundles</th></tr>"
    )
    rows = []
    for inc in found:
        links = " ".join(f"<a href='/api/v1/bundles/{d}'>{d[:10]}</a>" for d in inc.sample_digests)
        kind = inc.kind if inc.scope == "platform" else f"{inc.kind} (network)"
        ended = _time(inc.ended_at) if inc.ended_at else "ongoing"
        rows.append(
            f"<tr class=incident data-platform='{escape(inc.platform)}'"
            f" data-network='{escape(_network(inc))}' data-kind='{inc.kind}'>"
            f"<td>{escape(inc.platform)}</td><td>{escape(_network(inc))}</td>"
            f"<td style='color:{COLOURS[inc.kind]};font-weight:600'>{kind}</td>"
            f"<td>{escape(inc.method or '')}</td><td>{_time(inc.started_at)}</td>"
            f"<td>{ended}</td><td>{inc.probes}</td><td>{inc.measurements}</td>"
            f"<td>{'yes' if inc.confirmed else 'no'}</td><td>{links}</td></tr>"
        )
    return f"<h2>Incidents</h2><table id=incidents>{head}{''.join(rows)}</table>"
