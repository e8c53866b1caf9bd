"""The ISP transparent proxy: HTTP blockpage/redirect/reset, TLS eof/alert, and pass-through."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from censornet.pki import Pki, ensure_pki
from censornet.policy import HttpRule, Policy, PolicyWatcher, TlsRule, write_policy
from censornet.servers.certificates import SiteCertificates
from censornet.servers.clienthello import parse_sni
from censornet.servers.pages import large_object_bytes
from censornet.servers.proxy import TransparentProxy
from censornet.servers.web import SiteApp, WebServer
from censornet.topology import LARGE_OBJECT_BYTES

ORIGIN = "127.0.0.81"
PROXY = "127.0.0.82"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


class Path_:
    """Origin servers and the proxy in front of them, as REDIRECT would place it."""

    def __init__(self, state: Path, proxy: TransparentProxy, lab_ca: Path) -> None:
        self.state = state
        self.proxy = proxy
        self.lab_ca = lab_ca

    def set_policy(self, policy: Policy) -> None:
        write_policy(self.state, "isp1", policy)

    async def http_get(self, host: str, path: str = "/") -> httpx.Response:
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(
                f"http://{PROXY}:{self.proxy.http_port}{path}", headers={"host": host}
            )

    async def tls_connect(self, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = ssl.create_default_context(cafile=self.lab_ca)
        return await asyncio.open_connection(
            PROXY, self.proxy.tls_port, ssl=context, server_hostname=name
        )


@pytest.fixture
async def path(tmp_path: Path, pki: Pki) -> AsyncIterator[Path_]:
    app = SiteApp(PolicyWatcher(tmp_path, "inet").current)
    http = WebServer([ORIGIN], 0, app)
    https = WebServer([ORIGIN], 0, app, certificates=SiteCertificates(pki))
    await http.start()
    await https.start()
    ports = {"http": http.port, "tls": https.port}
    proxy = TransparentProxy(
        PolicyWatcher(tmp_path, "isp1").current, host=PROXY, http_port=0, tls_port=0
    )

    def destination(conn: object) -> tuple[str, int]:
        local_port = conn.getsockname()[1]  # type: ignore[attr-defined]
        return ORIGIN, ports["http"] if local_port == proxy.http_port else ports["tls"]

    proxy._destination = destination
    await proxy.start()
    yield Path_(tmp_path, proxy, pki.lab_ca)
    await proxy.close()
    await https.close()
    await http.close()


@pytest.mark.anyio
async def test_http_pass_through_reaches_the_origin(path: Path_) -> None:
    """Hosts without a rule are forwarded to the original destination unchanged."""
    path.set_policy(Policy(http_proxy=(HttpRule(suffix="x.com", action="blockpage"),)))
    response = await path.http_get("example.org")
    assert 200 == response.status_code
    assert "<title>Example Domain</title>" in response.text
    assert 301 == (await path.http_get("twitter.com")).status_code  # the origin's redirect
    large = await path.http_get("example.com", "/big")
    assert large_object_bytes(0, LARGE_OBJECT_BYTES) == large.content


@pytest.mark.anyio
async def test_http_blockpage(path: Path_) -> None:
    """A blockpage rule answers 200 with the regulator's iframe page."""
    path.set_policy(Policy(http_proxy=(HttpRule(suffix="x.com", action="blockpage"),)))
    response = await path.http_get("www.x.com")
    assert 200 == response.status_code
    assert "Surf Safely! This site is restricted" in response.text
    assert 'iframe src="http://warning.pta.lab/?host=www.x.com"' in response.text


@pytest.mark.anyio
async def test_http_redirect(path: Path_) -> None:
    """A redirect rule answers 302 to the warning host."""
    path.set_policy(Policy(http_proxy=(HttpRule(suffix="x.com", action="redirect"),)))
    response = await path.http_get("x.com")
    assert 302 == response.status_code
    assert "http://warning.pta.lab/?host=x.com" == response.headers["location"]


@pytest.mark.anyio
async def test_http_reset(path: Path_) -> None:
    """A reset rule aborts the connection with a RST after the request."""
    path.set_policy(Policy(http_proxy=(HttpRule(suffix="x.com", action="reset"),)))
    reader, writer = await asyncio.open_connection(PROXY, path.proxy.http_port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x.com\r\n\r\n")
    with pytest.raises(ConnectionResetError):
        await reader.read(100)
    writer.close()


@pytest.mark.anyio
async def test_tls_pass_through_completes_the_handshake(path: Path_) -> None:
    """Without a rule the ClientHello is replayed to the origin: a valid handshake and page."""
    path.set_policy(Policy(tls_proxy=(TlsRule(suffix="x.com", action="eof"),)))
    reader, writer = await path.tls_connect("www.youtube.com")
    writer.write(b"GET / HTTP/1.1\r\nHost: www.youtube.com\r\nConnection: close\r\n\r\n")
    body = await reader.read()
    assert b"<title>YouTube</title>" in body
    writer.close()


@pytest.mark.anyio
async def test_tls_eof(path: Path_) -> None:
    """An eof rule closes cleanly after the ClientHello: no bytes, no alert."""
    path.set_policy(Policy(tls_proxy=(TlsRule(suffix="x.com", action="eof"),)))
    raw_reader, raw_writer = await asyncio.open_connection(PROXY, path.proxy.tls_port)
    raw_writer.write(_client_hello("api.x.com"))
    assert b"" == await raw_reader.read(100)
    raw_writer.close()
    with pytest.raises(ssl.SSLEOFError):
        await asyncio.to_thread(_blocking_handshake, path.proxy.tls_port, "x.com", path.lab_ca)


@pytest.mark.anyio
async def test_tls_alert(path: Path_) -> None:
    """An alert rule sends a fatal handshake_failure alert record."""
    path.set_policy(Policy(tls_proxy=(TlsRule(suffix="twitter.com", action="alert"),)))
    raw_reader, raw_writer = await asyncio.open_connection(PROXY, path.proxy.tls_port)
    raw_writer.write(_client_hello("twitter.com"))
    assert bytes.fromhex("15030100020228") == await raw_reader.read(100)
    raw_writer.close()
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        await path.tls_connect("twitter.com")


def _blocking_handshake(port: int, name: str, cafile: Path) -> None:
    context = ssl.create_default_context(cafile=cafile)
    with (
        socket.create_connection((PROXY, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=name),
    ):
        pass


def _client_hello(name: str) -> bytes:
    """The ClientHello that Python's ssl sends for SNI ``name``."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert name == parse_sni(hello)
    return hello
