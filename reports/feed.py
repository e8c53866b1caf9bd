"""Subscriptions: incident events as an Atom feed per platform and country.

Each incident gives up to three events: ``new`` (at its first failing measurement),
``confirmed`` (at the measurement that made a second probe agree) and ``ended`` (at the first
good run after it). ``GET /feeds/incidents.atom?platform=x&country=PK`` lists the events of the
last ``days`` (default 7) up to the latest measurement, newest first; feed readers poll it, and
``blockprobe report watch`` posts the same events to webhooks (``reports.webhooks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from reports.api import Country, Platform, bad_parameter
from reports.incidents import data_end, incidents
from reports.model import Incident, ReportQuery, current_bucket_end
from reports.params import BadParameter, build_query, check_platform

EventKind = Literal["new", "confirmed", "ended"]
ATOM = "application/atom+xml; charset=utf-8"

router = APIRouter(tags=["subscriptions"])


@dataclass(frozen=True)
class Event:
    """Something that happened to an incident, at the measurements' time."""

    kind: EventKind
    at: datetime
    incident: Incident

    @property
    def id(self) -> str:
        return f"{self.incident.id}/{self.kind}"

    def title(self) -> str:
        inc = self.incident
        subject = inc.platform or "every platform (network outage)"
        where = f"{inc.network or ''} AS{inc.asn} {inc.country}".strip()
        verb = {"new": "started", "confirmed": "confirmed by a second probe", "ended": "ended"}
        return f"{subject} {inc.kind} in {where}: {verb[self.kind]}"

    def summary(self) -> str:
        inc = self.incident
        ended = inc.ended_at.isoformat() if inc.ended_at else "ongoing"
        state = "confirmed" if inc.confirmed else "unconfirmed"
        return (
            f"{inc.kind} ({inc.method}) from {inc.started_at.isoformat()} to {ended};"
            f" {inc.probes} probe(s), {inc.runs} failing run(s), {state}."
            f" Incident {inc.id}: blockprobe report evidence {inc.id} --output DIR"
        )


def events(found: list[Incident]) -> list[Event]:
    """The events of ``found``, newest first."""
    out: list[Event] = []
    for inc in found:
        out.append(Event("new", inc.started_at, inc))
        if inc.confirmed_at is not None:
            out.append(Event("confirmed", inc.confirmed_at, inc))
        if inc.ended_at is not None:
            out.append(Event("ended", inc.ended_at, inc))
    return sorted(out, key=lambda e: (e.at, e.id), reverse=True)


def recent_events(conn: Connection, query: ReportQuery) -> list[Event]:
    """Events of the incidents of ``query``, within its window."""
    since = query.since
    return [e for e in events(incidents(conn, query)) if e.at >= since]


def window(conn: Connection, days: int, **filters: str | None) -> ReportQuery:
    """The ``days`` up to the latest measurement (or now when there is none)."""
    until = data_end(conn) or current_bucket_end("hour")
    return ReportQuery.model_validate(
        {**filters, "since": until - timedelta(days=days), "until": until}
    )


def atom(found: list[Event], *, title: str, feed_id: str, base: str, self_url: str) -> str:
    """An Atom 1.0 document of ``found``."""
    updated = found[0].at if found else datetime.now(UTC)
    entries = []
    for event in found:
        inc = event.incident
        link = f"{base}/api/v1/reports/incidents/{inc.id}"
        bundles = "".join(
            f"<link rel='related' type='text/html' href='{base}/bundles/{d}'/>"
            for d in inc.sample_digests[:3]
        )
        entries.append(
            "<entry>"
            f"<id>{escape(feed_id)}:{event.id}</id>"
            f"<title>{escape(event.title())}</title>"
            f"<updated>{_stamp(event.at)}</updated>"
            f"<link rel='alternate' type='application/json' href='{escape(link)}'/>{bundles}"
            f"<category term='{event.kind}'/><category term='{inc.kind}'/>"
            f"<summary>{escape(event.summary())}</summary>"
            "</entry>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        "<feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<id>{escape(feed_id)}</id><title>{escape(title)}</title>"
        f"<updated>{_stamp(updated)}</updated>"
        f"<link rel='self' type='application/atom+xml' href='{escape(self_url)}'/>"
        "<author><name>blockprobe collector</name></author>"
        f"{''.join(entries)}</feed>\n"
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.get("/feeds/incidents.atom", response_model=None)
def incidents_feed(
    request: Request,
    platform: Platform = None,
    country: Country = None,
    days: Annotated[int, Query(ge=1, le=31, description="Days of events")] = 7,
) -> Response:
    """Incident events (new, confirmed, ended) for a platform and country, as Atom."""
    try:
        checked = build_query(platform, country, None, None, None, "hour")
    except BadParameter as exc:
        return bad_parameter(exc.detail)
    engine = request.app.state.store.engine
    with engine.connect() as conn:
        try:
            check_platform(conn, checked.platform)
        except BadParameter as exc:
            return bad_parameter(exc.detail)
        query = window(conn, days, platform=checked.platform, country=checked.country)
        found = recent_events(conn, query)
    base = str(request.base_url).rstrip("/")
    scope = " ".join(x for x in (checked.platform, checked.country) if x) or "everything"
    feed_id = f"tag:blockprobe,2024:{request.app.state.settings.log_origin}:incidents"
    feed_id += f":{checked.platform or '*'}:{checked.country or '*'}"
    body = atom(
        found,
        title=f"blockprobe incidents: {scope}",
        feed_id=feed_id,
        base=base,
        self_url=str(request.url),
    )
    return Response(body, media_type=ATOM)
