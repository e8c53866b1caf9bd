"""Platform, blockpage and MITM web servers over real HTTP and TLS on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from censornet import topology
from censornet.pki import Pki, ensure_pki
from censornet.policy import Policy, PolicyWatcher, WebRule, write_policy
from censornet.servers.certificates import (
    InterceptionCertificates,
    SiteCertificates,
    server_context,
)
from censornet.servers.pages import large_object_bytes
from censornet.servers.web import SiteApp, WebServer, blockpage_app

HOST = "127.0.0.71"
X_TITLE = "X. It's what's happening / X"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


class Sites:
    """The site servers (http and https) of one test, and its policy file."""

    def __init__(self, state: Path, http: WebServer, https: WebServer, lab_ca: Path) -> None:
        self.state = state
        self.http = http
        self.https = https
        self.lab_ca = lab_ca

    def set_policy(self, policy: Policy) -> None:
        write_policy(self.state, "inet", policy)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=ssl.create_default_context(cafile=self.lab_ca), timeout=5)

    async def get(
        self, name: str, path: str = "/", *, https: bool = True, **kw: object
    ) -> httpx.Response:
        async with self.client() as client:
            return await self.request(client, "GET", name, path, https=https, **kw)

    async def request(
        self,
        client: httpx.AsyncClient,
        method: str,
        name: str,
        path: str,
        *,
        https: bool = True,
        **kw: object,
    ) -> httpx.Response:
        server = self.https if https else self.http
        scheme = "https" if https else "http"
        url = f"{scheme}://{HOST}:{server.port}{path}"
        headers = {"host": name, **kw.pop("headers", {})}  # type: ignore[dict-item]
        return await client.request(
            method,
            url,
            headers=headers,
            extensions={"sni_hostname": name},
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
async def sites(tmp_path: Path, pki: Pki) -> AsyncIterator[Sites]:
    app = SiteApp(PolicyWatcher(tmp_path, "inet").current)
    http = WebServer([HOST], 0, app)
    https = WebServer([HOST], 0, app, certificates=SiteCertificates(pki), refuse=app.refuses)
    await http.start()
    await https.start()
    yield Sites(tmp_path, http, https, pki.lab_ca)
    await https.close()
    await http.close()


def _title(body: str) -> str:
    match = re.search(r"<title>(.*?)</title>", body)
    assert match is not None
    return match.group(1).replace("&#x27;", "'")


async def _handshake(port: int, name: str | None, cafile: Path, host: str = HOST) -> ssl.SSLObject:
    context = ssl.create_default_context(cafile=cafile)
    if name is None:
        context.check_hostname = False
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=name)
    ssl_object: ssl.SSLObject = writer.get_extra_info("ssl_object")
    writer.close()
    return ssl_object


@pytest.mark.anyio
async def test_certificate_validates_for_site_names_only(sites: Sites) -> None:
    """SNI picks the site's certificate; unknown SNI gets x's, which fails for that name."""
    for name in ("twitter.com", "pbs.twimg.com", "www.example.org", "en.wikipedia.org"):
        await _handshake(sites.https.port, name, sites.lab_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(sites.https.port, "unlisted.invalid", sites.lab_ca)
    no_sni = await _handshake(sites.https.port, None, sites.lab_ca)
    assert "x.com" in str(no_sni.getpeercert())


@pytest.mark.anyio
async def test_front_page_titles_per_site(sites: Sites) -> None:
    """GET / is the site's stable page with its own title, over https and canary http."""
    x_page = await sites.get("x.com")
    assert (200, X_TITLE) == (x_page.status_code, _title(x_page.text))
    assert x_page.text == (await sites.get("www.twitter.com")).text
    canary = await sites.get("example.com", https=False)
    assert (200, "Example Domain") == (canary.status_code, _title(canary.text))
    assert "Wikipedia" == _title((await sites.get("wikipedia.org", https=False)).text)


@pytest.mark.anyio
async def test_platforms_redirect_http_to_https(sites: Sites) -> None:
    """Port 80 of the platforms answers 301 to the same host and path over https."""
    response = await sites.get("www.youtube.com", "/watch?v=1", https=False)
    assert 301 == response.status_code
    assert "https://www.youtube.com/watch?v=1" == response.headers["location"]


@pytest.mark.anyio
async def test_large_object_whole_and_ranges(sites: Sites) -> None:
    """Any other path streams LARGE_OBJECT_BYTES deterministic bytes; Range is honoured."""
    whole = await sites.get("video.twimg.com", "/media/clip.mp4")
    assert 200 == whole.status_code
    assert topology.LARGE_OBJECT_BYTES == len(whole.content) == int(whole.headers["content-length"])
    assert large_object_bytes(0, topology.LARGE_OBJECT_BYTES) == whole.content
    part = await sites.get("x.com", "/big", headers={"range": "bytes=1048570-1048589"})
    assert 206 == part.status_code
    assert f"bytes 1048570-1048589/{topology.LARGE_OBJECT_BYTES}" == part.headers["content-range"]
    assert whole.content[1048570:1048590] == part.content
    tail = await sites.get("example.org", "/f", https=False, headers={"range": "bytes=-10"})
    assert whole.content[-10:] == tail.content
    beyond = await sites.get("x.com", "/big", headers={"range": f"bytes={10**9}-"})
    assert 416 == beyond.status_code


@pytest.mark.anyio
async def test_post_reports_bytes_received(sites: Sites) -> None:
    """POST reads the whole body (sized or chunked) and answers {"received": N}."""
    async with sites.client() as client:
        sized = await sites.request(client, "POST", "api.x.com", "/up", content=b"a" * 300_000)
        assert {"received": 300_000} == json.loads(sized.content)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"b" * 1000

        chunked = await sites.request(client, "POST", "api.x.com", "/up", content=chunks())
        assert {"received": 5000} == chunked.json()


@pytest.mark.anyio
async def test_web_policy_http503(sites: Sites) -> None:
    """http503 gives the "Something went wrong" page for covered hosts only."""
    sites.set_policy(Policy(web=(WebRule(suffix="x.com", mode="http503"),)))
    down = await sites.get("api.x.com")
    assert (503, "Something went wrong") == (down.status_code, _title(down.text))
    assert 200 == (await sites.get("twitter.com")).status_code


@pytest.mark.anyio
async def test_web_policy_close(sites: Sites) -> None:
    """close ends the connection at once: before the TLS handshake, or without an HTTP answer."""
    sites.set_policy(Policy(web=(WebRule(suffix="twitter.com", mode="close"),)))
    with pytest.raises((ConnectionError, ssl.SSLError)):
        await _handshake(sites.https.port, "twitter.com", sites.lab_ca)
    with pytest.raises(httpx.RemoteProtocolError):
        await sites.get("twitter.com", https=False)
    await _handshake(sites.https.port, "x.com", sites.lab_ca)


@pytest.mark.anyio
async def test_web_policy_slow(sites: Sites) -> None:
    """slow waits delay_ms before the response headers."""
    sites.set_policy(Policy(web=(WebRule(suffix="x.com", mode="slow", delay_ms=400),)))
    start = time.monotonic()
    response = await sites.get("x.com")
    assert time.monotonic() - start >= 0.4
    assert (200, X_TITLE) == (response.status_code, _title(response.text))


@pytest.mark.anyio
async def test_blockpage_server(pki: Pki) -> None:
    """Port 80 answers the regulator's notice; port 443 fails validation (self-signed)."""
    http = WebServer(["127.0.0.72"], 0, blockpage_app)
    self_signed = server_context(pki.self_signed_cert, pki.key("blockpage-selfsigned"))
    https = WebServer(["127.0.0.72"], 0, blockpage_app, certificates=lambda _: self_signed)
    await http.start()
    await https.start()
    try:
        async with httpx.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.72:{http.port}/any", headers={"host": "x.com"})
        assert (200, "Surf Safely! This site is restricted") == (
            page.status_code,
            _title(page.text),
        )
        assert "x.com" in page.text and "Section 37" in page.text
        for name in (topology.BLOCKPAGE_NAME, "x.com"):
            with pytest.raises(ssl.SSLCertVerificationError):
                await _handshake(https.port, name, pki.lab_ca, host="127.0.0.72")
    finally:
        await https.close()
        await http.close()


@pytest.mark.anyio
async def test_mitm_mints_certificate_for_sni_from_untrusted_ca(tmp_path: Path, pki: Pki) -> None:
    """The MITM certificate names the SNI but chains to the interception CA, not the lab CA."""
    app = SiteApp(PolicyWatcher(tmp_path, "inet").current)
    certificates = InterceptionCertificates(pki, tmp_path / "mitm")
    mitm = WebServer(["127.0.0.73"], 0, app, certificates=certificates)
    await mitm.start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await _handshake(mitm.port, "twitter.com", pki.lab_ca, host="127.0.0.73")
        minted = await _handshake(mitm.port, "abs.twimg.com", pki.mitm_ca, host="127.0.0.73")
        assert "abs.twimg.com" in str(minted.getpeercert())
        context = ssl.create_default_context(cafile=pki.mitm_ca)
        async with httpx.AsyncClient(verify=context) as client:
            page = await client.get(
                f"https://127.0.0.73:{mitm.port}/",
                headers={"host": "x.com"},
                extensions={"sni_hostname": "x.com"},
            )
        assert X_TITLE == _title(page.text)
    finally:
        await mitm.close()
        certificates.close()
