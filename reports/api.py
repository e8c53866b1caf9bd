"""Report routes on the collector: reachability, incidents, OONI JSONL and the dashboard.

Mounted by ``collectors.app`` with ``app.include_router(router)``; reads the collector's engine
from ``app.state.store``. Bad parameters answer 422 with ``{"error": "bad_parameter", ...}``
(``reports.params`` checks them, for the CLI too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from reports import dashboard, export, ooni
from reports.evidence_page import Links
from reports.incidents import incidents as find_incidents
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
from reports.params import BadParameter, build_query, check_platform
from reports.query import reachability as find_reachability

RowT = TypeVar("RowT", bound=BaseModel)

router = APIRouter(tags=["reports"])

Platform = Annotated[str | None, Query(description="Platform name, e.g. x")]
Country = Annotated[str | None, Query(description="ISO 3166 alpha-2, e.g. PK")]
Asn = Annotated[int | None, Query(description="Network number, e.g. 17557")]
Since = Annotated[datetime | None, Query(description="Start (inclusive), ISO 8601; naive = UTC")]
Until = Annotated[datetime | None, Query(description="End (exclusive), ISO 8601; naive = UTC")]
Bucket = Annotated[Grain, Query(description="Time bucket: hour (<= 31 days) or day")]
Format = Annotated[Literal["json", "csv"], Query(description="json or csv")]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.store.engine
    return engine


def bad_parameter(detail: str) -> JSONResponse:
    return JSONResponse({"error": "bad_parameter", "detail": detail}, status_code=422)


def _meta(query: ReportQuery) -> dict[str, object]:
    return {"query": query.model_dump(mode="json"), "generated_at": datetime.now(UTC).isoformat()}


def _report(
    request: Request,
    model: type[RowT],
    find: Callable[[Connection, ReportQuery], list[RowT]],
    args: tuple[Any, ...],
    format: str,
) -> Response:
    """One report's rows for the query ``args``, as JSON (with the query) or CSV."""
    try:
        query = build_query(*args)
    except BadParameter as exc:
        return bad_parameter(exc.detail)
    with _engine(request).connect() as conn:
        try:
            check_platform(conn, query.platform)
        except BadParameter as exc:
            return bad_parameter(exc.detail)
        rows = find(conn, query)
    if format == "csv":
        return Response(export.to_csv(rows, model), media_type="text/csv")
    return Response(export.to_json(rows, _meta(query)), media_type="application/json")


@router.get("/api/v1/reports/reachability", response_model=None)
def reachability(
    request: Request,
    platform: Platform = None,
    country: Country = None,
    asn: Asn = None,
    since: Since = None,
    until: Until = None,
    bucket: Bucket = "hour",
    format: Format = "json",
) -> Response:
    """Verdict counts, methods, distinct probes and confirmation per platform, network, bucket."""
    args = (platform, country, asn, since, until, bucket)
    return _report(request, ReachabilityRow, find_reachability, args, format)


@router.get("/api/v1/reports/incidents", response_model=None)
def incidents(
    request: Request,
    platform: Platform = None,
    country: Country = None,
    asn: Asn = None,
    since: Since = None,
    until: Until = None,
    bucket: Bucket = "hour",
    format: Format = "json",
) -> Response:
    """Blocks, throttles and outages with onset and end (docs/reports.md)."""
    args = (platform, country, asn, since, until, bucket)
    return _report(request, Incident, find_incidents, args, format)


@router.get("/api/v1/reports/ooni", response_model=None)
def ooni_jsonl(
    request: Request,
    platform: Platform = None,
    country: Country = None,
    asn: Asn = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Stored measurements as OONI-format JSONL (docs/ooni-export.md), over at most 31 days."""
    try:
        query = build_query(platform, country, asn, since, until, "hour")
    except BadParameter as exc:
        return bad_parameter(exc.detail)
    engine = _engine(request)
    with engine.connect() as conn:
        try:
            check_platform(conn, query.platform)
        except BadParameter as exc:
            return bad_parameter(exc.detail)

    def lines() -> Iterator[str]:
        with engine.connect() as conn:
            yield from ooni.export_lines(conn, query)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


LinkStyle = Annotated[
    Literal["served", "files"],
    Query(description="served: links to this collector; files: to pages written beside the file"),
]


@router.get("/dashboard", response_class=HTMLResponse, response_model=None)
def show_dashboard(
    request: Request,
    platform: Platform = None,
    country: Country = None,
    asn: Asn = None,
    hours: Annotated[int, Query(ge=1, le=744, description="Hours shown")] = 48,
    links: LinkStyle = "served",
) -> Response:
    """The HTML dashboard (self-contained: inline CSS and SVG, no script)."""
    try:
        query = build_query(platform, country, asn, None, None, "hour")
    except BadParameter as exc:
        return bad_parameter(exc.detail)
    with _engine(request).connect() as conn:
        try:
            check_platform(conn, query.platform)
        except BadParameter as exc:
            return bad_parameter(exc.detail)
        page = dashboard.render(
            conn,
            hours=hours,
            country=query.country,
            asn=asn,
            platform=query.platform,
            links=Links(served=links == "served"),
        )
    return HTMLResponse(page)
