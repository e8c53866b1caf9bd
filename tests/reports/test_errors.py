"""Every bad input of the report CLI and API gets a clear error, never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from collectors.config import CollectorSettings
from reports.app import create_app
from reports.cli import app as cli
from tests.reports.factories import load_scenario

RANGE = ["--since", "2024-02-17T12:00:00", "--until", "2024-02-17T22:00:00"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("errors") / "collector"
    app = create_app(CollectorSettings(data_dir=directory))
    load_scenario(app.state.store)
    app.state.store.engine.dispose()
    return directory


# (arguments, with {data} and {tmp} filled in; exit status; text the error must hold)
CLI_CASES: list[tuple[list[str], int, str]] = [
    (["incidents"], 2, "give --database, --data-dir or --collector"),
    (["incidents", "--data-dir", "{tmp}/nowhere"], 1, "no collector database at"),
    (["incidents", "--database", "sqlite:///{tmp}/missing.db"], 1, "no collector database at"),
    (["incidents", "--database", "sqlite:///{tmp}/empty.db"], 1, "not a blockprobe collector"),
    (["incidents", "--database", "nosuchdb://x"], 1, "cannot use database URL"),
    (["incidents", "--database", "postgresql+psycopg://u@127.0.0.1:1/x"], 1, "cannot read"),
    (["incidents", "--collector", "http://127.0.0.1:9"], 1, "cannot reach the collector"),
    (["incidents", "--collector", "nonsense"], 1, "collector"),
    (["incidents", "--data-dir", "{data}", "--platform", "nosuch"], 1, "known: facebook"),
    (["incidents", "--data-dir", "{data}", "--country", "pakistan"], 2, "two-letter"),
    (["incidents", "--data-dir", "{data}", "--bucket", "week"], 2, "hour or day"),
    (["incidents", "--data-dir", "{data}", "--format", "xml"], 2, "table, csv, json or parquet"),
    (["incidents", "--data-dir", "{data}", "--asn", "AS1"], 2, "Invalid value for '--asn'"),
    (["incidents", "--data-dir", "{data}", "--since", "yesterday"], 2, "for '--since'"),
    (
        ["incidents", "--data-dir", "{data}", "--since", "2024-02-18", "--until", "2024-02-17"],
        2,
        "since must be before until",
    ),
    (["reachability", "--data-dir", "{data}", "--format", "parquet"], 2, "parquet needs --output"),
    (
        ["incidents", "--data-dir", "{data}", "--format", "json", "--output", "{tmp}/no/x.json"],
        1,
        "cannot write",
    ),
    (["ooni", "--output", "{tmp}/o.jsonl", "--data-dir", "{tmp}/nowhere"], 1, "no collector"),
    (["ooni", "--output", "{tmp}/no/o.jsonl", "--data-dir", "{data}"], 1, "cannot write"),
    (["dashboard", "--output", "{tmp}/d.html"], 2, "give --data-dir or --collector"),
    (["dashboard", "--output", "{tmp}/d.html", "--data-dir", "{tmp}/nowhere"], 1, "no collector"),
    (
        ["dashboard", "--output", "{tmp}/d.html", "--data-dir", "{data}", "--platform", "nosuch"],
        1,
        "known: facebook",
    ),
    (["evidence", "123", "--output", "{tmp}/p", "--data-dir", "{data}"], 2, "16 hex digits"),
    (
        ["evidence", "0123456789abcdef", "--output", "{tmp}/p", "--data-dir", "{data}"],
        1,
        "no incident 0123456789abcdef",
    ),
    (["evidence", "0123456789abcdef", "--output", "{tmp}/p"], 2, "give --data-dir or --collector"),
]


@pytest.mark.parametrize(("argv", "status", "needle"), CLI_CASES)
def test_cli_bad_input(
    data: Path, tmp_path: Path, argv: list[str], status: int, needle: str
) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    args = [a.format(data=data, tmp=tmp_path) for a in argv]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == status, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert "Traceback" not in out.output
    assert needle in " ".join(out.output.split()), out.output
    assert not (tmp_path / "missing.db").exists()  # a report never creates a database


def test_cli_country_in_any_case(data: Path) -> None:
    upper = CliRunner().invoke(
        cli, ["incidents", "--data-dir", str(data), *RANGE, "--country", "PK", "--format", "csv"]
    )
    lower = CliRunner().invoke(
        cli, ["incidents", "--data-dir", str(data), *RANGE, "--country", "pk", "--format", "csv"]
    )
    assert upper.exit_code == lower.exit_code == 0, lower.output
    assert lower.stdout == upper.stdout and "tls.reset" in lower.stdout


@pytest.fixture
async def client(data: Path) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(CollectorSettings(data_dir=data))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as c:
        yield c
    app.state.store.engine.dispose()


API_CASES: list[tuple[str, dict[str, str], int, str]] = [
    ("/api/v1/reports/incidents", {"platform": "nosuch"}, 422, "known: facebook"),
    ("/api/v1/reports/reachability", {"platform": "nosuch"}, 422, "known: facebook"),
    ("/api/v1/reports/ooni", {"platform": "nosuch"}, 422, "known: facebook"),
    ("/api/v1/reports/incidents", {"country": "p1"}, 422, "two-letter"),
    ("/api/v1/reports/incidents", {"asn": "-1"}, 422, "asn"),
    ("/api/v1/reports/incidents", {"bucket": "week"}, 422, "bucket"),
    ("/dashboard", {"platform": "nosuch"}, 422, "known: facebook"),
    ("/dashboard", {"hours": "0"}, 422, "hours"),
    ("/dashboard", {"links": "elsewhere"}, 422, "links"),
    ("/api/v1/reports/incidents/zzz", {}, 422, "incident_id"),
    ("/api/v1/reports/incidents/0123456789abcdef", {}, 404, "no incident"),
    ("/bundles/xyz", {}, 422, "digest"),
    ("/bundles/" + "0" * 64, {}, 404, "no bundle"),
    ("/api/v1/probes/" + "0" * 64, {}, 404, "no enrolled key"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "params", "status", "needle"), API_CASES)
async def test_api_bad_input(
    client: httpx.AsyncClient, path: str, params: dict[str, str], status: int, needle: str
) -> None:
    r = await client.get(path, params=params)
    assert r.status_code == status, r.text
    assert needle in r.text
    assert r.headers["content-type"].startswith("application/json")
