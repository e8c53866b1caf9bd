"""Report routes on the collector: reachability, incidents, OONI JSONL and the dashboard.

Mounted by ``collectors.app`` with ``app.include_router(router)``; reads the collector's engine
from ``app.state.store``. Bad parameters answer 422 with ``{"error": "bad_parameter", ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine

from reports import dashboard, export, ooni
from reports.incidents import incidents as find_incidents
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
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


class BadParameter(Exception):
    """A report query that does not validate."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.store.engine
    return engine


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def build_query(
    platform: str | None,
    country: str | None,
    asn: int | None,
    since: datetime | None,
    until: datetime | None,
    bucket: Grain,
) -> ReportQuery:
    """The validated query, or ``BadParameter`` saying which parameter is wrong."""
    try:
        return ReportQuery.window(
            since=_utc(since),
            until=_utc(until),
            bucket=bucket,
            platform=platform,
            country=country,
            asn=asn,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        raise BadParameter(f"{where}: {first['msg']}") from exc


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

    def lines() -> Iterator[str]:
        with engine.connect() as conn:
            yield from ooni.export_lines(conn, query)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/dashboard", response_class=HTMLResponse, response_model=None)
def show_dashboard(
    request: Request,
    country: Country = None,
    asn: Asn = None,
    hours: Annotated[int, Query(ge=1, le=744, description="Hours shown")] = 48,
) -> Response:
    """The HTML dashboard (self-contained: inline CSS and SVG, no script)."""
    try:
        build_query(None, country, asn, None, None, "hour")
    except BadParameter as exc:
        return bad_parameter(exc.detail)
    with _engine(request).connect() as conn:
        page = dashboard.render(conn, hours=hours, country=country, asn=asn)
    return HTMLResponse(page)
