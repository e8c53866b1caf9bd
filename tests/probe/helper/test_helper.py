"""The control vantage app (in-process through httpx.ASGITransport) and its client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme

from probe.flows.plan import EndpointPlan, MeasureSettings, Timeouts
from probe.helper import ask_control
from probe.helper.app import create_app
from probe.helper.cli import make_cli
from tests.probe.steps.servers import (
    DNSServer,
    HTTPServer,
    Request,
    Zone,
    free_port,
    respond,
    server_context,
)

pytestmark = pytest.mark.anyio


async def home(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, b"<title>X</title>")


@pytest.fixture
async def setup(ca: trustme.CA, ca_file: Path) -> AsyncIterator[tuple[MeasureSettings, int]]:
    resolver = await DNSServer(Zone(addresses={"x.test": ["127.0.0.1"]})).start()
    web = await HTTPServer({"/": home}).start(tls=server_context(ca, "x.test", "example.test"))
    settings = MeasureSettings(
        system_resolver=f"127.0.0.1:{resolver.port}",
        control_resolvers=(),
        ca_file=ca_file,
        benign_sni="example.test",
        timeouts=Timeouts(dns=1, tcp_connect=1, tls_handshake=1, http_total=2, throughput=1),
    )
    yield settings, web.port
    resolver.close()
    web.close()


def _allowed(url: str) -> bool:
    return url.startswith("https://x.test:")


def _plan(port: int, host: str = "x.test") -> EndpointPlan:
    return EndpointPlan(
        platform="x", url=f"https://{host}:{port}/", domain=host, platform_domains=(host,)
    )


async def test_helper_measures_an_allowed_endpoint(setup: tuple[MeasureSettings, int]) -> None:
    """An allowed URL is measured with the web flow and returned as Observations."""
    settings, port = setup
    transport = httpx.ASGITransport(app=create_app(settings, _allowed))
    obs = await ask_control(
        "http://helper.test/",
        _plan(port),
        with_throughput=False,
        ca_file=None,
        timeout=10,
        transport=transport,
    )
    assert obs is not None
    assert 200 == obs.http[0].status
    assert [("x.test", True), ("example.test", True)] == [(t.sni, t.cert_valid) for t in obs.tls]


async def test_helper_refuses_other_urls(setup: tuple[MeasureSettings, int]) -> None:
    """A URL the allow function rejects gets 403 with a reason; the client returns None."""
    settings, _ = setup
    app = create_app(settings, _allowed)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://helper.test"
    ) as client:
        reply = await client.post(
            "/api/v1/control", json={"url": "https://evil.test/", "platform": "x"}
        )
        malformed = await client.post("/api/v1/control", json={"url": "file:///etc/passwd"})
    assert 403 == reply.status_code
    assert "https://evil.test/ is not an endpoint" in reply.json()["detail"]
    assert 422 == malformed.status_code
    refused = await ask_control(
        "http://helper.test",
        _plan(1, "evil.test"),
        with_throughput=False,
        ca_file=None,
        timeout=5,
        transport=httpx.ASGITransport(app=app),
    )
    assert refused is None


async def test_throughput_urls_are_checked_too(setup: tuple[MeasureSettings, int]) -> None:
    """A request cannot smuggle a disallowed throughput URL."""
    settings, port = setup
    app = create_app(settings, _allowed)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://helper.test"
    ) as client:
        reply = await client.post(
            "/api/v1/control",
            json={
                "url": f"https://x.test:{port}/",
                "platform": "x",
                "throughput_url": "https://elsewhere.test/big",
            },
        )
    assert 403 == reply.status_code


async def test_unreachable_helper_gives_none() -> None:
    """A helper that does not answer yields None, not an exception."""
    obs = await ask_control(
        f"http://127.0.0.1:{free_port()}",
        _plan(1),
        with_throughput=False,
        ca_file=None,
        timeout=2,
    )
    assert obs is None


def test_cli_builds_serve_with_the_loader() -> None:
    """The typer app exposes serve with --host, --port and --config."""
    from typer.testing import CliRunner

    app = make_cli(lambda path: (MeasureSettings(), _allowed))
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert 0 == result.exit_code
    for option in ("--host", "--port", "--config"):
        assert option in result.output


@pytest.mark.slow
def test_helper_serve_logs_no_client_address(tmp_path: Path) -> None:
    """``blockprobe helper serve`` as a process: requests leave no client address in its log."""
    import re
    import subprocess
    import sys
    import time

    port = free_port()
    log = tmp_path / "helper.log"
    config = tmp_path / "probe.toml"
    config.write_text("")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blockprobe", "helper", "serve", "--host", "127.0.0.1"]
            + ["--port", str(port), "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/control"
        deadline = time.monotonic() + 30
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(url, json={"url": "https://example.invalid/", "platform": "x"})
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer is not None and 403 == answer.status_code
        assert 422 == httpx.post(url, content=b"junk").status_code
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "Uvicorn running" in text  # the log was written
    assert "/api/v1/control" not in text
    assert not re.search(rf"127\.0\.0\.1:(?!{port}\b)\d+", text)  # only its own address


def test_a_request_carries_http3_and_leaves_defaults_out() -> None:
    """The plan's http3 flag reaches the helper's plan; a request without it sends no http3 key,
    so a helper that predates the field still takes it."""
    from probe.helper.request import ControlRequest

    wanted = ControlRequest(url="https://www.youtube.com/", platform="youtube", http3=True)
    assert wanted.plan().http3 is True
    plain = ControlRequest(url="https://x.com/", platform="x")
    assert "http3" not in plain.model_dump(mode="json", exclude_defaults=True)
