"""The dashboard in headless Chromium: served by a real collector, and written as a file.

Checks what is on the page (a row per network with its operator's name, colours, incident marks,
the throttle chart, the country summary) and that its links lead to readable bundle pages both
ways: over HTTP from the served page, and as files beside the written one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from typer.testing import CliRunner

from collectors.config import CollectorSettings
from reports.app import create_app
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


class Page(HTMLParser):
    """What the browser serialised: rows, segments, marks, charts, countries, incidents, links."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.states: dict[str, set[str]] = {}
        self.marks: dict[str, list[str]] = {}
        self.charts: list[dict[str, str]] = []
        self.rates: set[str] = set()
        self.countries: list[str] = []
        self.incidents: list[dict[str, str]] = []
        self.bundle_links: list[str] = []
        self.text: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        css = a.get("class", "")
        if tag == "g" and css == "network-row":
            self._row = a["data-network"]
            self.rows[self._row] = a
            self.states[self._row] = set()
            self.marks[self._row] = []
        elif tag == "rect" and css == "state" and self._row:
            self.states[self._row].add(a["data-state"])
        elif tag == "a" and css == "incident-mark" and self._row:
            self.marks[self._row].append(a["data-kind"])
        elif tag == "svg" and css == "throughput":
            self.charts.append(a)
        elif tag == "g" and css in ("platform-rate", "control-rate"):
            self.rates.add(css)
        elif tag == "tr" and "data-country" in a:
            self.countries.append(a["data-country"])
        elif tag == "tr" and css == "incident":
            self.incidents.append(a)
        elif tag == "a" and css == "bundle-link":
            self.bundle_links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def dump(browser: str, profile: Path, url: str) -> str:
    command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True).stdout


def check_page(dom: str) -> Page:
    page = Page()
    page.feed(dom)
    assert set(page.rows) == {"PK AS64500", "PK AS64501", "RU AS64502", "PK AS64503"}
    assert page.rows["PK AS64500"]["data-name"] == "isp64500"  # the probes' network label
    text = " ".join(page.text)
    assert "isp64501" in text and "AS64502 · RU" in text
    assert {"blocked", "reachable"} <= page.states["PK AS64500"]  # over time, not one colour
    assert page.states["RU AS64502"] == {"throttled"}
    assert "outage" in page.states["PK AS64503"]
    assert page.marks == {
        "PK AS64500": ["blocked"],
        "PK AS64501": ["blocked"],
        "RU AS64502": ["throttled"],
        "PK AS64503": ["outage"],
    }
    assert len(page.charts) == 1 and page.rates == {"platform-rate", "control-rate"}
    assert page.countries == ["PK", "RU"]
    kinds = sorted((i["data-network"], i["data-scope"], i["data-kind"]) for i in page.incidents)
    assert kinds == [
        ("PK AS64500", "platform", "blocked"),
        ("PK AS64501", "platform", "blocked"),
        ("PK AS64503", "network", "outage"),
        ("RU AS64502", "platform", "throttled"),
    ]
    unconfirmed = [i["data-network"] for i in page.incidents if i["data-confirmed"] == "false"]
    assert unconfirmed == ["PK AS64501"] and "unconfirmed" in text
    assert len(page.bundle_links) >= 4
    return page


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "collector"
    app = create_app(CollectorSettings(data_dir=directory))
    load_scenario(app.state.store)
    app.state.store.engine.dispose()
    return directory


def test_dashboard_served_and_written(data: Path, tmp_path: Path) -> None:
    browser = chromium()
    profile = tmp_path / "profile"
    written = tmp_path / "site" / "dashboard.html"
    collector = CollectorProcess(data, None)
    try:
        collector.wait_ready()
        served = check_page(dump(browser, profile, f"{collector.url}/dashboard"))
        for href in served.bundle_links:
            assert href.startswith("/bundles/")
            r = httpx.get(urljoin(collector.url, href), timeout=30)
            assert r.status_code == 200 and "valid Ed25519 signature" in r.text
        bundle_dom = dump(browser, profile, urljoin(collector.url, served.bundle_links[0]))
        shot = tmp_path / "dashboard.png"
        subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}"]
            + ["--window-size=1280,1600", f"{collector.url}/dashboard"],
            capture_output=True,
            timeout=90,
            check=True,
        )
        out = CliRunner().invoke(
            cli, ["dashboard", "--collector", collector.url, "--output", str(written)]
        )
        assert out.exit_code == 0, out.output
    finally:
        collector.stop()
    assert "the proof verifies" in bundle_dom and "data-verdict=" in bundle_dom
    assert shot.stat().st_size > 10_000  # a real rendering, not an empty page
    keep = os.environ.get("BLOCKPROBE_KEEP_SCREENSHOT")
    if keep:  # to look at the rendering: BLOCKPROBE_KEEP_SCREENSHOT=/some/where.png
        shutil.copy(shot, Path(keep))
    # The written file, opened with no collector running: its links are files beside it.
    page = check_page(dump(browser, profile, written.as_uri()))
    for href in page.bundle_links:
        target = (written.parent / href).resolve()
        assert target.is_file(), href
    first = (written.parent / page.bundle_links[0]).resolve()
    dom = dump(browser, profile, first.as_uri())
    assert "the proof verifies" in dom and "valid Ed25519 signature" in dom
    inner = sorted(first.with_suffix("").glob("*.html"))
    assert inner and "Controls" in dump(browser, profile, inner[0].as_uri())
