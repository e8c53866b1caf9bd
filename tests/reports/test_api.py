"""The report API on the collector, the CLI and the exports (JSON, CSV, Parquet, OONI JSONL)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from collectors.config import CollectorSettings
from reports.app import create_app
from reports.cli import app as cli
from reports.ooni import blocking_of
from tests.reports.factories import load_scenario

pytestmark = pytest.mark.anyio
RANGE = {"since": "2024-02-17T12:00:00Z", "until": "2024-02-17T22:00:00Z"}


@pytest.fixture
def loaded_app(tmp_path: Path) -> tuple[FastAPI, dict[str, list[str]], Path]:
    data = tmp_path / "collector"
    app = create_app(CollectorSettings(data_dir=data))
    digests = load_scenario(app.state.store)
    return app, digests, data


@pytest.fixture
async def client(loaded_app: tuple[FastAPI, object, Path]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=loaded_app[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as c:
        yield c


async def test_reachability_json_and_csv(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/reports/reachability", params={**RANGE, "platform": "x"})
    assert r.status_code == 200
    body = r.json()
    assert body["v"] == 1 and len(body["result"]) == 4 * 10
    assert {row["platform"] for row in body["result"]} == {"x"}
    r = await client.get(
        "/api/v1/reports/reachability",
        params={**RANGE, "asn": 64500, "bucket": "day", "format": "csv"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    x = next(row for row in rows if row["platform"] == "x")
    # votes: each probe's 30 blocked and 30 reachable measurements of the day tie: reachable
    assert (x["blocked"], x["reachable"], x["probes"], x["methods"]) == (
        "0",
        "2",
        "2",
        "tls.reset:30",
    )
    assert x["bucket_start"] == "2024-02-17T00:00:00Z"


async def test_incidents_api(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/reports/incidents", params={**RANGE, "country": "PK"})
    assert r.status_code == 200
    found = r.json()["result"]
    assert {(i["platform"], i["asn"], i["kind"]) for i in found} == {
        ("x", 64500, "blocked"),
        ("x", 64501, "blocked"),
        (None, 64503, "outage"),  # the network's outage, once
    }
    lower = await client.get("/api/v1/reports/incidents", params={**RANGE, "country": "pk"})
    assert lower.json()["result"] == found
    digest = next(i for i in found if i["asn"] == 64500)["sample_digests"][0]
    bundle = await client.get(f"/api/v1/bundles/{digest}")
    assert bundle.status_code == 200 and "signatures" in bundle.json()


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"format": "xml"}, "format"),
        ({"country": "pakistan"}, "country"),
        ({"asn": "AS123"}, "asn"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-02-18", "until": "2024-02-17"}, "since must be before until"),
        ({"since": "2024-01-01", "until": "2024-03-01"}, "at most 31 days"),
    ],
)
async def test_bad_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], needle: str
) -> None:
    for path in ("/api/v1/reports/reachability", "/api/v1/reports/incidents"):
        r = await client.get(path, params=params)
        assert r.status_code == 422, r.text
        assert needle in r.text


async def test_ooni_jsonl(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/reports/ooni", params={**RANGE, "asn": 64500, "platform": "x"})
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 2 * 10 * 3
    blocked = next(m for m in lines if m["test_keys"]["blockprobe"]["verdict"] == "blocked")
    assert blocked["probe_asn"] == "AS64500" and blocked["probe_cc"] == "PK"
    assert blocked["probe_ip"] == "127.0.0.1" and blocked["test_name"] == "blockprobe_platform"
    assert blocked["measurement_start_time"].startswith("2024-02-17 1")
    assert blocked["test_keys"]["blocking"] == "http-failure"  # TLS: Web Connectivity's class
    assert blocked["test_keys"]["accessible"] is False
    assert blocked["report_id"].split("_")[1:4] == ["blockprobeplatform", "PK", "64500"]
    assert blocked["software_name"] == "blockprobe" and blocked["software_version"] == "0.1.0"


def test_blocking_mapping() -> None:
    assert blocking_of("blocked", "dns.nxdomain") == (False, "dns")
    assert blocking_of("blocked", "tcp.timeout") == (False, "tcp_ip")
    assert blocking_of("blocked", "http.blockpage") == (False, "http-diff")
    assert blocking_of("blocked", "http.reset") == (False, "http-failure")
    assert blocking_of("reachable", None) == (True, False)
    assert blocking_of("outage", "outage.platform") == (False, False)
    assert blocking_of("inconclusive", None) == (None, None)


def test_cli_formats(loaded_app: tuple[FastAPI, object, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    data = loaded_app[2]
    runner = CliRunner()
    base = [
        "--data-dir",
        str(data),
        "--since",
        "2024-02-17T12:00:00",
        "--until",
        "2024-02-17T22:00:00",
    ]
    out = runner.invoke(cli, ["incidents", *base, "--format", "json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert len(body["result"]) == 4 and body["generated_at"].startswith("20")
    out = runner.invoke(cli, ["incidents", *base, "--format", "table"])
    assert out.exit_code == 0 and "tls.reset" in out.stdout and "outage.local" in out.stdout
    ongoing = tmp_path / "ongoing.parquet"  # every incident ongoing: ended_at is all null
    out = runner.invoke(
        cli, ["incidents", *base, "--asn", "64501", "--format", "parquet", "--output", str(ongoing)]
    )
    assert out.exit_code == 0, out.output
    schema = pq.read_schema(ongoing)
    assert str(schema.field("ended_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("first_good_after").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("sample_digests").type) == "list<element: string>"
    target = tmp_path / "rows.parquet"
    out = runner.invoke(
        cli,
        ["reachability", *base, "--bucket", "day", "--format", "parquet", "--output", str(target)],
    )
    assert out.exit_code == 0, out.output
    table = pq.read_table(target).to_pylist()
    assert len(table) == 8
    x = next(r for r in table if (r["platform"], r["asn"]) == ("x", 64500))
    assert dict(x["methods"]) == {"tls.reset": 30} and x["probes"] == 2
    jsonl = tmp_path / "ooni.jsonl"
    out = runner.invoke(cli, ["ooni", "--output", str(jsonl), *base])
    assert out.exit_code == 0, out.output
    assert len(jsonl.read_text().splitlines()) == 7 * 10 * 6
    page = tmp_path / "dash.html"
    out = runner.invoke(cli, ["dashboard", "--data-dir", str(data), "--output", str(page)])
    assert out.exit_code == 0, out.output
    assert "data-state='blocked'" in page.read_text()
    assert list((tmp_path / "bundles").glob("*.html"))  # the linked bundles' pages beside it
    out = runner.invoke(cli, ["reachability", *base, "--bucket", "week"])
    assert out.exit_code != 0 and "hour or day" in out.output
