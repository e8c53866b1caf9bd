"""``blockprobe report ...``: reachability, incidents, evidence packs, feeds, OONI JSONL, dashboard.

Reads a collector's database (``--database URL`` or ``--data-dir``) or asks a running collector
(``--collector URL``) through its report API. Every bad input ends in one ``error:`` line and
exit status 1 (2 for a malformed option), never a traceback.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import httpx
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from reports import export
from reports.model import Grain, Incident, ReachabilityRow, ReportQuery
from reports.params import BadParameter, build_query, check_platform

if TYPE_CHECKING:
    from reports.feed import Event

app = typer.Typer(help="Reachability reports.", no_args_is_help=True, add_completion=False)

OutputFormat = Literal["table", "csv", "json", "parquet"]

RowT = TypeVar("RowT", bound=BaseModel)
Database = Annotated[str | None, typer.Option(help="SQLAlchemy URL of a collector's database.")]
DataDir = Annotated[Path | None, typer.Option(help="A collector's data directory (SQLite).")]
Collector = Annotated[str | None, typer.Option(help="A collector's URL, e.g. http://host:8080.")]
PlatformOpt = Annotated[str | None, typer.Option(help="Platform, e.g. x.")]
CountryOpt = Annotated[str | None, typer.Option(help="Country, e.g. PK (any case).")]
AsnOpt = Annotated[int | None, typer.Option(help="Network number.")]
SinceOpt = Annotated[datetime | None, typer.Option(help="Start (UTC, inclusive).")]
UntilOpt = Annotated[datetime | None, typer.Option(help="End (UTC, exclusive).")]
BucketOpt = Annotated[str, typer.Option(help="hour or day.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv, json or parquet.")]
OutputOpt = Annotated[Path | None, typer.Option(help="Write here instead of stdout.")]


def fail(message: str) -> NoReturn:
    """Print one error line and exit with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _engine_url(database: str | None, data_dir: Path | None) -> str:
    if database:
        if database.startswith("sqlite:///"):
            path = Path(database.removeprefix("sqlite:///").split("?", 1)[0])
            if not path.is_file():
                fail(f"no collector database at {path}")
        return database
    if data_dir:
        path = data_dir / "collector.db"
        if not path.is_file():
            fail(f"no collector database at {path} (is --data-dir a collector's data directory?)")
        return f"sqlite:///{path}"
    raise typer.BadParameter("give --database, --data-dir or --collector")


@contextmanager
def open_database(database: str | None, data_dir: Path | None) -> Iterator[Connection]:
    """A connection to a migrated collector database; a clear error for anything else."""
    from collectors.db import make_engine
    from collectors.migrations import MIGRATIONS
    from collectors.schema import schema_version

    url = _engine_url(database, data_dir)
    try:
        engine: Engine = make_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        fail(f"cannot use database URL {url!r}: {exc}")
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("schema_version"):
                fail(f"{url} is not a blockprobe collector database (no schema_version table)")
            version = conn.execute(select(schema_version.c.version)).scalar() or 0
            if version < len(MIGRATIONS):
                fail(
                    f"the database is at schema v{version}, reports need v{len(MIGRATIONS)}:"
                    " start this version's collector on it once to migrate it"
                )
            yield conn
    except SQLAlchemyError as exc:
        fail(f"cannot read the database: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


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


def fetch(collector: str, path: str, params: dict[str, Any]) -> httpx.Response:
    """GET from a collector; a clear error when it cannot be reached or refuses."""
    url = f"{collector.rstrip('/')}{path}"
    try:
        response = httpx.get(url, params=params, timeout=60.0)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the collector at {collector}: {type(exc).__name__}: {exc}")
    except ValueError as exc:  # an URL httpx cannot use
        fail(f"bad collector URL {collector!r}: {exc}")
    if response.status_code != 200:
        from reports.evidence_pack import refusal_detail  # on a refusal only: it loads signing

        fail(f"the collector answered {response.status_code}: {refusal_detail(response)}")
    return response


def _fetch_rows(collector: str, path: str, query: ReportQuery) -> list[dict[str, Any]]:
    params = {k: v for k, v in query.model_dump(mode="json").items() if v is not None}
    try:
        result: list[dict[str, Any]] = fetch(collector, path, params).json()["result"]
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"the collector's answer is not a report: {exc}")
    return result


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")


def _emit(
    items: list[Any], model: type[BaseModel], fmt: str, output: Path | None, query: ReportQuery
) -> None:
    if fmt not in ("table", "csv", "json", "parquet"):
        raise typer.BadParameter("must be table, csv, json or parquet", param_hint="--format")
    if fmt == "parquet":
        if output is None:
            raise typer.BadParameter("parquet needs --output", param_hint="--output")
        try:
            export.to_parquet(items, model, output)
        except OSError as exc:
            fail(f"cannot write {output}: {exc}")
        return
    if fmt == "csv":
        _write(export.to_csv(items, model), output)
    elif fmt == "json":
        meta = {"query": query.model_dump(mode="json"), "generated_at": _now()}
        _write(export.to_json(items, meta), output)
    else:
        _write(_table(items, model), output)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _table(items: list[Any], model: type[BaseModel]) -> str:
    if model is ReachabilityRow:
        columns = ["bucket_start", "platform", "country", "asn", "state", "dominant_method"]
        columns += ["measurements", "probes", "confirmed"]
    else:
        columns = ["id", "platform", "network", "asn", "kind", "method", "started_at"]
        columns += ["ended_at", "probes", "runs", "confirmed"]
    table = Table(*columns)
    for item in items:
        values = [getattr(item, c) for c in columns]
        if model is Incident and item.platform is None:
            values[1] = "(network)"
        table.add_row(*(_show(v) for v in values))
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue()


def _show(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def load_rows(
    model: type[RowT],
    path: str,
    find: Callable[[Connection, ReportQuery], list[RowT]],
    query: ReportQuery,
    source: tuple[str | None, Path | None, str | None],
) -> list[RowT]:
    """Rows of a report: from a collector's API, or straight from its database."""
    database, data_dir, collector = source
    if collector:
        try:
            return [model.model_validate(r) for r in _fetch_rows(collector, path, query)]
        except ValidationError as exc:
            fail(f"the collector's answer does not match this version's report: {exc}")
    with open_database(database, data_dir) as conn:
        try:
            check_platform(conn, query.platform)
        except BadParameter as exc:
            fail(exc.detail)
        return find(conn, query)


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
    from reports.query import reachability as find_reachability

    query = _query(platform, country, asn, since, until, bucket)
    source = (database, data_dir, collector)
    rows = load_rows(
        ReachabilityRow, "/api/v1/reports/reachability", find_reachability, query, source
    )
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
    """Blocks, throttles and outages, with onset and end at the measurements' own times."""
    from reports.incidents import incidents as find_incidents

    query = _query(platform, country, asn, since, until, bucket)
    source = (database, data_dir, collector)
    found = load_rows(Incident, "/api/v1/reports/incidents", find_incidents, query, source)
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
    from reports import ooni

    query = _query(platform, country, asn, since, until, "hour")
    count = 0
    with open_database(database, data_dir) as conn:
        try:
            check_platform(conn, query.platform)
        except BadParameter as exc:
            fail(exc.detail)
        try:
            with output.open("w") as out:
                for line in ooni.export_lines(conn, query):
                    out.write(line)
                    count += 1
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(json.dumps({"measurements": count, "output": str(output)}), err=True)


@app.command()
def dashboard(
    output: Annotated[Path, typer.Option(help="The HTML file to write.")],
    data_dir: DataDir = None,
    collector: Collector = None,
    platform: PlatformOpt = None,
    country: CountryOpt = None,
    asn: AsnOpt = None,
    hours: Annotated[int, typer.Option(min=1, max=744, help="Hours shown.")] = 48,
) -> None:
    """Write the dashboard page, with the pages of the bundles it links to beside it.

    The links work from the written file: each linked bundle's page (and its measurements')
    is written under ``bundles/`` next to it, checked against the collector's signed log.
    """
    from reports.dashboard_files import write_dashboard

    query = _query(platform, country, asn, None, None, "hour")
    chosen = {"platform": query.platform, "country": query.country, "asn": asn}
    params: dict[str, str | int] = {k: v for k, v in chosen.items() if v is not None}
    params["hours"] = hours
    try:
        with _collector_client(data_dir, collector) as client:
            pages = write_dashboard(client, params, output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    except httpx.HTTPError as exc:
        fail(f"cannot reach the collector at {collector}: {type(exc).__name__}: {exc}")
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"wrote {output} and {pages} bundle/measurement pages beside it", err=True)


@contextmanager
def _collector_client(data_dir: Path | None, collector: str | None) -> Iterator[Any]:
    """An HTTP client of a running collector, or of one opened in-process on a data directory."""
    if collector:
        with httpx.Client(base_url=collector.rstrip("/"), timeout=60.0) as client:
            yield client
        return
    if not data_dir:
        raise typer.BadParameter("give --data-dir or --collector")
    from collectors.config import CollectorSettings
    from reports.app import create_app
    from reports.evidence_pack import InProcess

    with open_database(None, data_dir):
        pass  # a clear error when it is not a collector's data directory
    app_ = create_app(CollectorSettings(data_dir=data_dir))
    local = InProcess(app_)
    try:
        yield local
    finally:
        local.close()
        app_.state.store.engine.dispose()


@app.command()
def evidence(
    incident: Annotated[str, typer.Argument(help="The incident's id (from `report incidents`).")],
    output: Annotated[Path, typer.Option(help="The directory to write the pack in.")],
    data_dir: DataDir = None,
    collector: Collector = None,
) -> None:
    """Write an incident's evidence pack: bundles, keys, log proofs, and how to verify them."""
    from reports.evidence_pack import PackError, write_pack

    if not re.fullmatch(r"[0-9a-f]{16}", incident):
        raise typer.BadParameter("an incident id is 16 hex digits", param_hint="INCIDENT")
    if output.exists() and not (output.is_dir() and not any(output.iterdir())):
        fail(f"{output} exists and is not an empty directory")
    source = collector or str(data_dir)
    try:
        with _collector_client(data_dir, collector) as client:
            count = write_pack(client, incident, output, source=source, written=_now())
    except PackError as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:
        fail(f"cannot reach the collector at {collector}: {type(exc).__name__}: {exc}")
    typer.echo(f"wrote {count} bundle(s) with keys and log proofs to {output}")
    typer.echo(f"check them offline: blockprobe verify {output}")


@app.command()
def watch(
    webhook: Annotated[list[str], typer.Option(help="URL to POST each new event to (repeat).")],
    state: Annotated[Path, typer.Option(help="File remembering the events already posted.")],
    data_dir: DataDir = None,
    collector: Collector = None,
    platform: PlatformOpt = None,
    country: CountryOpt = None,
    interval: Annotated[float, typer.Option(min=5.0, help="Seconds between checks.")] = 60.0,
    once: Annotated[bool, typer.Option(help="Check once and exit.")] = False,
) -> None:
    """Post incident events (new, confirmed, ended) to webhooks as they happen."""
    import time

    from reports.webhooks import deliver, load_sent, save_sent

    checked = _query(platform, country, None, None, None, "hour")
    for hook in webhook:
        if not hook.startswith(("http://", "https://")):
            raise typer.BadParameter(f"{hook!r} is not an http(s) URL", param_hint="--webhook")
    try:
        sent = load_sent(state)
    except ValueError as exc:
        fail(str(exc))
    with httpx.Client() as poster:
        while True:
            found = _events(data_dir, collector, checked.platform, checked.country)
            posted, errors = deliver(found, webhook, sent, poster)
            try:
                save_sent(state, sent)
            except OSError as exc:
                fail(f"cannot write {state}: {exc.strerror or exc}")
            typer.echo(f"{_now()} posted {posted} event(s)", err=True)
            for error in errors:
                typer.echo(f"  {error}", err=True)
            if once:
                if errors:
                    raise typer.Exit(1)
                return
            time.sleep(interval)


def _events(
    data_dir: Path | None, collector: str | None, platform: str | None, country: str | None
) -> list[Event]:
    from reports.feed import events, recent_events, window

    if collector:
        query = ReportQuery.window(platform=platform, country=country)
        rows = _fetch_rows(collector, "/api/v1/reports/incidents", query)
        try:
            return events([Incident.model_validate(r) for r in rows])
        except ValidationError as exc:
            fail(f"the collector's answer does not match this version's report: {exc}")
    with open_database(None, data_dir) as conn:
        try:
            check_platform(conn, platform)
        except BadParameter as exc:
            fail(exc.detail)
        query = window(conn, 7, platform=platform, country=country)
        found: list[Event] = recent_events(conn, query)
        return found
