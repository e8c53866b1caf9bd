"""Subscriptions: the Atom feed per platform and country, and webhooks posted once."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from collectors.config import CollectorSettings
from reports.app import create_app
from reports.cli import app as cli
from tests.reports.factories import load_scenario

NS = {"a": "http://www.w3.org/2005/Atom"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "collector"
    app = create_app(CollectorSettings(data_dir=directory))
    load_scenario(app.state.store)
    app.state.store.engine.dispose()
    return directory


@pytest.fixture
async def client(data: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CollectorSettings(data_dir=data))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as c:
        yield c
    app.state.store.engine.dispose()


def entries(text: str) -> list[tuple[str, str, str]]:
    """(event, kind, title) per entry."""
    root = ET.fromstring(text)
    out = []
    for entry in root.findall("a:entry", NS):
        terms = [c.get("term", "") for c in entry.findall("a:category", NS)]
        out.append((terms[0], terms[1], entry.findtext("a:title", "", NS)))
    return out


@pytest.mark.anyio
async def test_atom_feed_per_platform_and_country(client: httpx.AsyncClient) -> None:
    r = await client.get("/feeds/incidents.atom", params={"platform": "x", "country": "pk"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    got = sorted((event, kind) for event, kind, _ in entries(r.text))
    assert got == sorted(
        [
            ("new", "blocked"),  # AS64500, confirmed and ended
            ("confirmed", "blocked"),
            ("ended", "blocked"),
            ("new", "blocked"),  # AS64501: one probe, ongoing
            ("new", "outage"),  # AS64503's network outage, confirmed and ended
            ("confirmed", "outage"),
            ("ended", "outage"),
        ]
    )
    titles = [t for _, _, t in entries(r.text)]
    assert any("isp64501 AS64501 PK: started" in t for t in titles)
    youtube = await client.get("/feeds/incidents.atom", params={"platform": "youtube"})
    assert {kind for _, kind, _ in entries(youtube.text)} == {"outage"}  # the network's outage
    ru = await client.get("/feeds/incidents.atom", params={"country": "RU"})
    assert [(e, k) for e, k, _ in entries(ru.text)] == [
        ("confirmed", "throttled"),
        ("new", "throttled"),
    ]
    bad = await client.get("/feeds/incidents.atom", params={"platform": "nosuch"})
    assert bad.status_code == 422 and "known:" in bad.text


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("Handler", (Hook,), {"received": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_webhooks_post_each_event_once(
    data: Path, tmp_path: Path, hook: tuple[str, type[Hook]]
) -> None:
    url, handler = hook
    state = tmp_path / "sent.json"
    argv = ["watch", "--webhook", url, "--state", str(state), "--data-dir", str(data), "--once"]
    handler.status = 500
    failed = CliRunner().invoke(cli, argv)
    assert failed.exit_code == 1 and "500" in failed.output
    attempts = len(handler.received)
    assert attempts > 0
    handler.status = 204
    first = CliRunner().invoke(cli, argv)
    assert first.exit_code == 0, first.output
    posted = handler.received[attempts:]
    assert len(posted) == attempts  # the failed ones again, now delivered
    assert {p["event"] for p in posted} == {"new", "confirmed", "ended"}
    news = [p["incident"] for p in posted if p["event"] == "new"]
    assert {(i["asn"], i["method"]) for i in news} >= {(64500, "tls.reset")}  # type: ignore[index]
    again = CliRunner().invoke(cli, argv)
    assert again.exit_code == 0 and len(handler.received) == 2 * attempts  # nothing twice
    bad = CliRunner().invoke(
        cli, ["watch", "--webhook", "ftp://x", "--state", str(state), "--once"]
    )
    assert bad.exit_code == 2 and "http(s) URL" in bad.output
