"""The dashboard, served by a real collector on 127.0.0.1, rendered by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.app import create_app
from collectors.config import CollectorSettings
from reports.cli import app as cli
from tests.collectors.processes import CollectorProcess
from tests.reports.factories import load_scenario

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium not found (apt-get install -y chromium)")


class Cells(HTMLParser):
    """The grid cells and incident rows as the browser serialised them."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], dict[str, str]] = {}
        self.incidents: list[dict[str, str]] = []
        self.links: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "data-state" in a:
            self.cells[(a["data-network"], a["data-platform"])] = a
        if tag == "tr" and a.get("class") == "incident":
            self.incidents.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag == "svg":
            self.svgs += 1


@pytest.fixture
def collector(tmp_path: Path) -> CollectorProcess:
    data = tmp_path / "collector"
    app = create_app(CollectorSettings(data_dir=data))
    load_scenario(app.state.store)
    app.state.store.engine.dispose()
    return CollectorProcess(data, None)


def test_dashboard_in_chromium(collector: CollectorProcess, tmp_path: Path) -> None:
    browser = chromium()
    try:
        collector.wait_ready()
        url = f"{collector.url}/dashboard"
        base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run(
            [*base, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
        ).stdout
        shot = tmp_path / "dashboard.png"
        subprocess.run(
            [*base, f"--screenshot={shot}", "--window-size=1280,1800", url],
            capture_output=True,
            timeout=90,
            check=True,
        )
        out = CliRunner().invoke(
            cli, ["dashboard", "--collector", collector.url, "--output", str(tmp_path / "d.html")]
        )
        assert out.exit_code == 0, out.output
    finally:
        collector.stop()
    assert shot.stat().st_size > 10_000  # a real rendering, not an empty page
    page = Cells()
    page.feed(dom)
    # The latest hour (hour 9): AS64500 is reachable again, AS64501 still blocked by DNS,
    # AS64502 throttled, AS64503 recovered from its outage.
    expected = {
        ("PK AS64500", "x"): ("reachable", "#2e7d32"),
        ("PK AS64501", "x"): ("blocked", "#c62828"),
        ("RU AS64502", "x"): ("throttled", "#ef6c00"),
        ("PK AS64503", "youtube"): ("reachable", "#2e7d32"),
    }
    for key, (state, colour) in expected.items():
        assert page.cells[key]["data-state"] == state
        assert colour in page.cells[key]["style"]
    assert len(page.cells) == 8
    kinds = sorted((i["data-network"], i["data-platform"], i["data-kind"]) for i in page.incidents)
    assert kinds == [
        ("PK AS64500", "x", "blocked"),
        ("PK AS64501", "x", "blocked"),
        ("PK AS64503", "x", "outage"),
        ("PK AS64503", "youtube", "outage"),
        ("RU AS64502", "x", "throttled"),
    ]
    assert page.svgs == 2  # one timeline per platform
    assert sum(link.startswith("/api/v1/bundles/") for link in page.links) >= 8 + 5
    assert "dns.nxdomain" in dom and "confirmed" in dom
    assert (tmp_path / "d.html").read_text().count("data-state=") == 8
    keep = os.environ.get("BLOCKPROBE_KEEP_SCREENSHOT")
    if keep:  # to look at the rendering: BLOCKPROBE_KEEP_SCREENSHOT=/some/where.png
        shutil.copy(shot, Path(keep))
