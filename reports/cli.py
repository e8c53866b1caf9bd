"""``blockprobe report ...``: reachability, incidents, OONI JSONL and the dashboard.

Reads a collector's database (``--database URL`` or ``--data-dir``) or asks a running collector
(``--collector URL``) through its report API.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from reports import dashboard as dashboard_page
from reports import export, ooni
from reports.api import BadParameter, build_query
from reports.incidents import incidents as find_incidents
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
from reports.query import reachability as find_reachability

app = typer.Typer(help="Reachability reports.", no_args_is_help=True, add_completion=False)

OutputFormat = Literal["table", "csv", "json", "parquet"]

RowT = TypeVar("RowT", bound=BaseModel)
Database = Annotated[str | None, typer.Option(help="SQLAlchemy URL of a collector's database.")]
DataDir = Annotated[Path | None, typer.Option(help="A collector's data directory (SQLite).")]
Collector = Annotated[str | None, typer.Option(help="A collector's URL, e.g. http://host:8080.")]
PlatformOpt = Annotated[str | None, typer.Option(help="Platform, e.g. x.")]
CountryOpt = Annotated[str | None, typer.Option(help="Country, e.g. PK.")]
AsnOpt = Annotated[int | None, typer.Option(help="Network number.")]
SinceOpt = Annotated[datetime | None, typer.Option(help="Start (UTC, inclusive).")]
UntilOpt = Annotated[datetime | None, typer.Option(help="End (UTC, exclusive).")]
BucketOpt = Annotated[str, typer.Option(help="hour or day.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv, json or parquet.")]
OutputOpt = Annotated[Path | None, typer.Option(help="Write here instead of stdout.")]


def _engine_url(database: str | None, data_dir: Path | None) -> str:
    if database:
        return database
    if data_dir:
        path = data_dir / "collector.db"
        if not path.exists():
            raise typer.BadParameter(f"no collector database at {path}", param_hint="--data-dir")
        return f"sqlite:///{path}"
    raise typer.BadParameter("give --database, --data-dir or --collector")


def _query(
    platform: str | None,
    country: str | None,
    asn: int | None,
    since: datetime | None,
    until: datetime | None,
    bucket: str,
) -> ReportQuery:
    if bucket not in ("hour", "day"):
        raise typer.BadParameter("must be hour or day", param_hint="--bucket")
    grain: Grain = "hour" if bucket == "hour" else "day"
    try:
        return build_query(platform, country, asn, since, until, grain)
    except BadParameter as exc:
        raise typer.BadParameter(exc.detail) from exc


def _fetch(collector: str, path: str, query: ReportQuery) -> list[dict[str, Any]]:
    params = {k: v for k, v in query.model_dump(mode="json").items() if v is not None}
    response = httpx.get(f"{collector.rstrip('/')}{path}", params=params, timeout=60.0)
    if response.status_code != 200:
        raise typer.BadParameter(f"{response.status_code}: {response.text[:300]}")
    result: list[dict[str, Any]] = response.json()["result"]
    return result


def _emit(
    items: list[Any], model: type[BaseModel], fmt: str, output: Path | None, query: ReportQuery
) -> None:
    if fmt not in ("table", "csv", "json", "parquet"):
        raise typer.BadParameter("must be table, csv, json or parquet", param_hint="--format")
    if fmt == "parquet":
        if output is None:
            raise typer.BadParameter("parquet needs --output", param_hint="--output")
        export.to_parquet(items, model, output)
        return
    if fmt == "csv":
        text = export.to_csv(items, model)
    elif fmt == "json":
        text = export.to_json(items, {"query": query.model_dump(mode="json")})
    else:
        _table(items, model, output)
        return
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def _table(items: list[Any], model: type[BaseModel], output: Path | None) -> None:
    if model is ReachabilityRow:
        columns = ["bucket_start", "platform", "country", "asn", "state", "dominant_method"]
        columns += ["measurements", "probes", "confirmed"]
    else:
        columns = ["platform", "country", "asn", "kind", "scope", "method", "started_at"]
        columns += ["ended_at", "probes", "measurements", "confirmed"]
    table = Table(*columns)
    for item in items:
        values = [getattr(item, c) for c in columns]
        table.add_row(*(_show(v) for v in values))
    console = Console(file=output.open("w") if output else None, width=200)
    console.print(table)


def _show(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _load(
    model: type[RowT],
    path: str,
    find: Callable[[Connection, ReportQuery], list[RowT]],
    query: ReportQuery,
    source: tuple[str | None, Path | None, str | None],
) -> list[RowT]:
    """Rows of a report: from a collector's API, or straight from its database."""
    database, data_dir, collector = source
    if collector:
        return [model.model_validate(r) for r in _fetch(collector, path, query)]
    from collectors.db import make_engine

    engine = make_engine(_engine_url(database, data_dir))
    try:
        with engine.connect() as conn:
            return find(conn, query)
    finally:
        engine.dispose()


@app.command()
def reachability(
    database: Database = None,
    data_dir: DataDir = None,
    collector: Collector = None,
    platform: PlatformOpt = None,
    country: CountryOpt = None,
    asn: AsnOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    bucket: BucketOpt = "hour",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Verdicts per platform, network and time bucket."""
    query = _query(platform, country, asn, since, until, bucket)
    source = (database, data_dir, collector)
    rows = _load(ReachabilityRow, "/api/v1/reports/reachability", find_reachability, query, source)
    _emit(rows, ReachabilityRow, fmt, output, query)


@app.command()
def incidents(
    database: Database = None,
    data_dir: DataDir = None,
    collector: Collector = None,
    platform: PlatformOpt = None,
    country: CountryOpt = None,
    asn: AsnOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    bucket: BucketOpt = "hour",
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """Blocks, throttles and outages with onset and end."""
    query = _query(platform, country, asn, since, until, bucket)
    source = (database, data_dir, collector)
    found = _load(Incident, "/api/v1/reports/incidents", find_incidents, query, source)
    _emit(found, Incident, fmt, output, query)


@app.command("ooni")
def ooni_export(
    output: Annotated[Path, typer.Option(help="The JSONL file to write.")],
    database: Database = None,
    data_dir: DataDir = None,
    platform: PlatformOpt = None,
    country: CountryOpt = None,
    asn: AsnOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Stored measurements as OONI-format JSONL (docs/ooni-export.md)."""
    from collectors.db import make_engine

    query = _query(platform, country, asn, since, until, "hour")
    engine = make_engine(_engine_url(database, data_dir))
    count = 0
    with engine.connect() as conn, output.open("w") as out:
        for line in ooni.export_lines(conn, query):
            out.write(line)
            count += 1
    engine.dispose()
    typer.echo(json.dumps({"measurements": count, "output": str(output)}), err=True)


@app.command()
def dashboard(
    output: Annotated[Path, typer.Option(help="The HTML file to write.")],
    database: Database = None,
    data_dir: DataDir = None,
    collector: Collector = None,
    country: CountryOpt = None,
    asn: AsnOpt = None,
    hours: Annotated[int, typer.Option(min=1, max=744, help="Hours shown.")] = 48,
) -> None:
    """Write the dashboard page (self-contained HTML) to a file."""
    if collector:
        params: dict[str, str | int] = {"hours": hours}
        if country:
            params["country"] = country
        if asn is not None:
            params["asn"] = asn
        response = httpx.get(f"{collector.rstrip('/')}/dashboard", params=params, timeout=60.0)
        response.raise_for_status()
        output.write_text(response.text)
        return
    from collectors.db import make_engine

    _query(None, country, asn, None, None, "hour")
    engine = make_engine(_engine_url(database, data_dir))
    with engine.connect() as conn:
        page = dashboard_page.render(conn, hours=hours, country=country, asn=asn)
    engine.dispose()
    output.write_text(page)
