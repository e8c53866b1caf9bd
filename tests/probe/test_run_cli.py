"""``blockprobe run``: --json prints one document only, errors exit 2, offline is outage.local."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import probe.run
from probe.commands.run import register
from probe.model import RunDocument
from tests.probe.test_run import Fakes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app() -> typer.Typer:
    """A `blockprobe`-like app with `run` registered, as the lead registers it."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """The group."""

    register(app)
    return app


@pytest.fixture
def fakes(monkeypatch) -> Fakes:
    """Replace the real flows, helper and classifier with scripted fakes."""
    fakes = Fakes(behaviour={"https://twitter.com/": "reset"})
    monkeypatch.setattr(probe.run, "_default_measure", lambda: fakes.measure)
    monkeypatch.setattr(probe.run, "_default_canary", lambda: fakes.measure_canary)
    monkeypatch.setattr(probe.run, "_default_classify", lambda: fakes.classify)
    monkeypatch.setattr(probe.run, "_default_ask_control", lambda: fakes.ask_control)
    return fakes


def fake_config(tmp_path: Path) -> Path:
    path = tmp_path / "probe.toml"
    path.write_text(
        'canaries = ["https://canary.test/", "https://other-canary.test/"]\n'
        'control_resolvers = ["udp:127.0.0.1:9"]\n'
        '[vantage]\ncountry = "PK"\nnetwork = "lab-isp1"\n'
    )
    return path


def invoke(app: typer.Typer, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["run", *args], env=env or {}, catch_exceptions=False)


def test_json_prints_one_document_and_nothing_else(app, fakes, tmp_path):
    """stdout is exactly one RunDocument; progress went to stderr."""
    result = invoke(app, "--json", "--platform", "x", "--config", str(fake_config(tmp_path)))
    assert 0 == result.exit_code, result.stderr
    document = json.loads(result.stdout)  # the whole of stdout is one JSON value
    assert {"probe", "started_at", "results"} == set(document)
    parsed = RunDocument.model_validate_json(result.stdout)
    summary = next(r for r in parsed.results if r.target is None)
    assert ("x", "blocked", True) == (summary.platform, summary.verdict, summary.partial)
    assert len(parsed.results) == 1 + len(fakes.measured)
    assert "measuring" in result.stderr
    assert "measuring" not in result.stdout


def test_human_output_is_a_table_per_platform(app, fakes, tmp_path):
    """Without --json: a table with each endpoint, verdict and method."""
    config = str(fake_config(tmp_path))
    result = invoke(app, "-p", "x", "-p", "signal", "--config", config)
    assert 0 == result.exit_code, result.stderr
    out = result.stdout
    assert "X (Twitter): blocked (tls.reset), partial" in out
    assert "Signal: reachable" in out
    assert "https://twitter.com/" in out and "tls.reset" in out
    assert "[1/" not in out  # progress stays on stderr


def test_the_table_fits_80_columns_and_evidence_comes_on_request(app, fakes, tmp_path):
    """At 80 columns no line is wider; --verbose adds each endpoint's evidence below its table."""
    config = str(fake_config(tmp_path))
    plain = invoke(app, "-p", "x", "--config", config, env={"COLUMNS": "80"})
    assert 0 == plain.exit_code, plain.stderr
    assert max(len(line) for line in plain.stdout.splitlines()) <= 80
    assert "ClientHello reset at" not in plain.stdout  # the fake reset's evidence
    assert "--verbose" in plain.stdout
    verbose = invoke(app, "-p", "x", "--verbose", "--config", config, env={"COLUMNS": "80"})
    assert 0 == verbose.exit_code, verbose.stderr
    assert max(len(line) for line in verbose.stdout.splitlines()) <= 80
    assert "  - ClientHello reset at" in verbose.stdout


def test_unknown_platform_exits_2_naming_the_known_ones(app, fakes, tmp_path):
    """An unknown --platform is refused before anything is measured."""
    result = invoke(app, "--platform", "myspace", "--config", str(fake_config(tmp_path)))
    assert 2 == result.exit_code
    assert "unknown platform 'myspace'" in result.stderr
    assert "x" in result.stderr and "wikipedia" in result.stderr
    assert "" == result.stdout
    assert [] == fakes.measured


def test_bad_config_exits_2_naming_file_and_key(app, fakes, tmp_path):
    """A config with an unknown key is refused with the file and the key."""
    path = tmp_path / "probe.toml"
    path.write_text("[timeouts]\nconect = 2\n")
    result = invoke(app, "--json", "--config", str(path))
    assert 2 == result.exit_code
    assert f"{path}: timeouts.conect: unknown key" in result.stderr
    assert "" == result.stdout
    assert [] == fakes.measured


def test_missing_ca_file_from_the_environment_exits_2(app, fakes, tmp_path):
    """BLOCKPROBE_CA_FILE is honoured, and a missing file refused."""
    env = {"BLOCKPROBE_CA_FILE": str(tmp_path / "nope.pem")}
    result = invoke(app, "--config", str(fake_config(tmp_path)), env=env)
    assert 2 == result.exit_code
    assert "ca_file" in result.stderr


def test_ca_file_option_reaches_the_control_vantage(app, fakes, tmp_path, monkeypatch):
    """--ca-file replaces the configured trust store for the whole run."""
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    seen: list[object] = []

    async def ask(helper_url, plan, *, with_throughput, ca_file, timeout):  # noqa: ASYNC109
        seen.append(ca_file)
        return None

    monkeypatch.setattr(probe.run, "_default_ask_control", lambda: ask)
    config = fake_config(tmp_path)
    config.write_text(
        config.read_text().replace("[vantage]", 'helper_url = "http://h.test/"\n[vantage]')
    )
    result = invoke(app, "--json", "-p", "x", "--config", str(config), "--ca-file", str(ca))
    assert 0 == result.exit_code, result.stderr
    assert seen and all(ca == s for s in seen)


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 with nothing listening on TCP or UDP (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
    return int(port)


@pytest.mark.parametrize("resolver", ["closed", "silent"])
def test_without_internet_the_run_says_outage_local_not_blocked(app, tmp_path, resolver):
    """Resolvers refusing (closed port) or silent, canaries on a closed port: outage.local, in time.

    The real flows and classifier run; all traffic goes to 127.0.0.1 (nothing else is reachable
    through resolvers that do not answer).
    """
    pytest.importorskip("probe.flows.web")
    if not hasattr(pytest.importorskip("probe.classify"), "classify"):
        pytest.skip("probe.classify.classify is not there yet")
    port = closed_loopback_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: queries to it time out
        dns_port = silent.getsockname()[1] if resolver == "silent" else port
        path = tmp_path / "offline.toml"
        path.write_text(
            f'system_resolver = "127.0.0.1:{dns_port}"\n'
            f'control_resolvers = ["udp:127.0.0.1:{dns_port}", "https://127.0.0.1:{port}/q"]\n'
            f'canaries = ["https://127.0.0.1:{port}/", "http://127.0.0.1:{port}/"]\n'
            "retries = 1\n"
            "[timeouts]\ndns = 0.5\ntcp_connect = 0.5\ntls_handshake = 0.5\nhttp_total = 0.5\n"
            "throughput = 0.5\n"
        )
        start = time.monotonic()
        result = invoke(app, "--json", "--platform", "x", "--config", str(path))
        elapsed = time.monotonic() - start
    assert 0 == result.exit_code, result.stderr
    document = RunDocument.model_validate_json(result.stdout)
    assert len(document.results) == 10  # the summary and x's nine endpoints
    for row in document.results:
        assert "blocked" != row.verdict, row
        assert ("outage", "outage.local") == (row.verdict, row.method), row
    assert elapsed < 10.0
