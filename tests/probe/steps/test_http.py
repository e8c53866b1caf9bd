"""http.fetch: pinned address with the real Host/SNI, redirects, title, body cap, failures."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from probe.model.failures import Failure
from probe.model.observations import HTTPObservation
from probe.net.clock import Clock, deadline_in
from probe.steps import http
from tests.probe.steps.servers import HTTPServer, Request, reset, respond, server_context

pytestmark = pytest.mark.anyio

PAGE = b"<html><head><title>  Home\n of &amp; X </title></head><body>hello</body></html>"


async def home(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, PAGE, {"content-type": "text/html", "set-cookie": "secret=1"})


async def to_home(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 302, headers={"location": "/"})


async def away(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 302, headers={"location": "http://warning.example/blocked"})


async def loop(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 301, headers={"location": "/loop"})


async def big(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, b"a" * (http.BODY_CAP + 1000))


async def rst(request: Request, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def eof(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def hang(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3)


async def stall(request: Request, writer: asyncio.StreamWriter) -> None:
    """The status line and 1000 bytes of a 100000-byte body, then nothing."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"a" * 1000)
    await writer.drain()
    await asyncio.sleep(3)


REGULATOR = b"<html><body>This page is blocked by <a href=http://trustpositif.kominfo.go.id>"


async def regulator(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, REGULATOR)


ROUTES = {
    "/stall": stall,
    "/regulator": regulator,
    "/": home,
    "/r": to_home,
    "/away": away,
    "/loop": loop,
    "/big": big,
    "/rst": rst,
    "/eof": eof,
    "/hang": hang,
}


@pytest.fixture
async def web() -> AsyncIterator[HTTPServer]:
    server = await HTTPServer(ROUTES).start()
    yield server
    server.close()


async def _fetch(url: str, wait: float = 2.0, **kwargs: Any) -> HTTPObservation:
    return await http.fetch(
        url, ip="127.0.0.1", deadline=deadline_in(wait), clock=Clock(), **kwargs
    )


async def test_fetch_pins_the_address_and_keeps_the_host(web: HTTPServer) -> None:
    """The request goes to the pinned IP with the URL's Host; the page is described."""
    obs = await _fetch(f"http://x.test:{web.port}/")
    assert obs.failure is None
    assert 200 == obs.status
    assert [f"x.test:{web.port}"] == web.hosts
    assert "Home of & X" == obs.title
    assert len(PAGE) == obs.body_length
    assert hashlib.sha256(PAGE).hexdigest() == obs.body_sha256
    assert "text/html" == obs.headers["content-type"]
    assert "set-cookie" not in obs.headers
    assert "127.0.0.1" == obs.ip


async def test_redirects_are_followed_and_recorded(web: HTTPServer) -> None:
    """Same-host redirects are followed on the pinned address and listed."""
    obs = await _fetch(f"http://x.test:{web.port}/r", follow_within=("x.test",))
    assert 200 == obs.status
    assert (f"http://x.test:{web.port}/",) == obs.redirects
    assert f"http://x.test:{web.port}/" == obs.final_url


async def test_redirect_outside_the_platform_is_not_fetched(web: HTTPServer) -> None:
    """A redirect to another domain is recorded but not followed."""
    obs = await _fetch(f"http://x.test:{web.port}/away", follow_within=("x.test",))
    assert 302 == obs.status
    assert ("http://warning.example/blocked",) == obs.redirects
    assert obs.failure is None


async def test_redirect_loop_stops_after_ten(web: HTTPServer) -> None:
    """More than ten redirects end the fetch with a failure."""
    obs = await _fetch(f"http://x.test:{web.port}/loop")
    assert Failure.UNKNOWN == obs.failure
    assert 11 == len(obs.redirects)


async def test_body_is_capped(web: HTTPServer) -> None:
    """Bodies beyond the cap are truncated and marked."""
    obs = await _fetch(f"http://x.test:{web.port}/big")
    assert http.BODY_CAP == obs.body_length
    assert obs.body_truncated


@pytest.mark.parametrize(
    ("path", "failure"),
    [("/rst", Failure.CONNECTION_RESET), ("/eof", Failure.EOF), ("/hang", Failure.TIMEOUT)],
)
async def test_failures_after_the_request(web: HTTPServer, path: str, failure: Failure) -> None:
    """Reset, close and silence after the request are recorded, not raised."""
    obs = await _fetch(f"http://x.test:{web.port}{path}", wait=0.5)
    assert failure == obs.failure
    assert obs.status is None


async def test_https_sends_the_sni_and_checks_the_ca(ca: trustme.CA, ca_file: Path) -> None:
    """Over TLS the SNI is the URL's host, verified against the CA file."""
    server = await HTTPServer(ROUTES).start(tls=server_context(ca, "x.test"))
    try:
        ok = await _fetch(f"https://x.test:{server.port}/", ca_file=ca_file)
        untrusted = await _fetch(f"https://x.test:{server.port}/")
        wrong = await _fetch(f"https://y.test:{server.port}/", ca_file=ca_file)
    finally:
        server.close()
    assert 200 == ok.status
    assert "x.test" == server.snis[0]
    assert Failure.SSL_UNKNOWN_AUTHORITY == untrusted.failure
    assert Failure.SSL_INVALID_HOSTNAME == wrong.failure


async def test_a_body_that_stalls_keeps_the_status_and_the_bytes(web: HTTPServer) -> None:
    """A stall after the status line: the status and the bytes that came, with the timeout."""
    obs = await _fetch(f"http://x.test:{web.port}/stall", wait=0.5)
    assert (Failure.TIMEOUT, 200, 1000) == (obs.failure, obs.status, obs.body_length)
    assert obs.body_truncated
    assert 1000 == obs.body_samples[-1][1]  # when the last byte came, and the count then
    assert obs.body_seconds is not None
    assert obs.body_seconds > obs.body_samples[-1][0]  # silent since, until the deadline


async def test_a_blockpage_body_is_named_not_kept(web: HTTPServer) -> None:
    """A body matching a blockpage fingerprint records the fingerprint's name."""
    obs = await _fetch(f"http://x.test:{web.port}/regulator")
    assert "ooni.id_6" == obs.blockpage
    home_page = await _fetch(f"http://x.test:{web.port}/")
    assert None is home_page.blockpage
