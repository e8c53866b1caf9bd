"""The lab's web servers: platform and canary sites, the blockpage server, the MITM server.

``WebServer`` listens on many addresses of one port, optionally with TLS whose certificate is picked
from the SNI peeked before the handshake, and hands each request to a responder. ``SiteApp`` is the
platforms' behaviour (pages, the large object, POST echo, redirects to https) under the ``web``
policy; ``blockpage_app`` is the regulator's notice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from censornet import topology
from censornet.policy import Policy, WebRule, name_matches
from censornet.servers import pages
from censornet.servers.certificates import CertificateChooser
from censornet.servers.http import HttpRequest, HttpResponse, serve_http
from censornet.servers.listen import (
    TcpListener,
    bind_tcp_all,
    open_streams,
    peek_client_hello,
    peeked_sni,
)

log = logging.getLogger(__name__)

PolicySource = Callable[[], Policy]


@dataclass(frozen=True)
class ConnectionInfo:
    """What a responder knows about the connection a request came on."""

    local_ip: str
    local_port: int
    sni: str | None
    https: bool


Responder = Callable[[HttpRequest, ConnectionInfo], Awaitable[HttpResponse | None]]


class WebServer:
    """HTTP or HTTPS on ``port`` of every address in ``hosts``."""

    def __init__(
        self,
        hosts: Iterable[str],
        port: int,
        respond: Responder,
        *,
        certificates: CertificateChooser | None = None,
        refuse: Callable[[str | None, str], bool] | None = None,
    ) -> None:
        self.hosts = tuple(hosts)
        self.port = port
        self._respond = respond
        self._certificates = certificates
        self._refuse = refuse  # (sni, local_ip) -> close the TLS connection before the handshake
        self._listener: TcpListener | None = None

    async def start(self) -> None:
        """Bind every address and start accepting."""
        socks = bind_tcp_all(self.hosts, self.port)
        self.port = socks[0].getsockname()[1]
        self._listener = TcpListener(socks, self._handle)
        self._listener.start()

    async def close(self) -> None:
        """Stop serving."""
        if self._listener is not None:
            await self._listener.close()

    async def _handle(self, conn: socket.socket) -> None:
        local_ip, local_port = conn.getsockname()[:2]
        sni = None
        context = None
        if self._certificates is not None:
            sni = peeked_sni(await peek_client_hello(conn))
            if self._refuse is not None and self._refuse(sni, local_ip):
                log.info("web %s:%s sni=%s: closing at once (policy)", local_ip, local_port, sni)
                return  # the accept loop closes the socket: FIN before any TLS byte
            context = self._certificates(sni)
        reader, writer = await open_streams(conn, context)
        info = ConnectionInfo(local_ip, local_port, sni, context is not None)
        await serve_http(reader, writer, lambda request: self._respond(request, info))


def web_rule(policy: Policy, name: str) -> WebRule | None:
    """The first ``web`` rule of ``policy`` matching host ``name``."""
    for rule in policy.web:
        if name and name_matches(name, rule.suffix):
            return rule
    return None


class SiteApp:
    """The platform and canary sites, as the web policy says they behave now."""

    def __init__(self, policy: PolicySource) -> None:
        self._policy = policy

    def refuses(self, sni: str | None, local_ip: str) -> bool:
        """Whether a TLS connection for ``sni`` must be closed before the handshake."""
        rule = web_rule(self._policy(), sni or _name_of_ip(local_ip))
        return rule is not None and rule.mode == "close"

    async def __call__(self, request: HttpRequest, conn: ConnectionInfo) -> HttpResponse | None:
        name = request.host or conn.sni or _name_of_ip(conn.local_ip)
        site = pages.site_for_name(name) or pages.site_for_ip(conn.local_ip) or pages.DEFAULT_SITE
        rule = web_rule(self._policy(), name)
        if rule is not None and rule.mode == "close":
            return None
        if rule is not None and rule.mode == "slow":
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule is not None and rule.mode == "http503":
            return HttpResponse.html(503, pages.outage_page())
        if not conn.https and site in pages.HTTPS_ONLY_SITES:
            host = request.host or pages.primary_name(site)
            return HttpResponse(301, (("Location", f"https://{host}{_origin_form(request)}"),))
        return respond_as_site(request, site)


def respond_as_site(request: HttpRequest, site: str) -> HttpResponse:
    """A site's answer: front page, large object (with Range), or POST byte count."""
    if request.method == "POST":
        body = json.dumps({"received": len(request.body)}).encode()
        return HttpResponse(200, (("Content-Type", "application/json"),), body)
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(405, (("Allow", "GET, HEAD, POST"),))
    if request.path == "/":
        return HttpResponse.html(200, pages.site_page(site))
    return large_object(request.headers.get("range"))


def large_object(range_header: str | None) -> HttpResponse:
    """The large object, whole or the byte range asked for."""
    size = topology.LARGE_OBJECT_BYTES
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("Accept-Ranges", "bytes"),
        ("Cache-Control", "no-store"),
    ]
    start, end, status = 0, size, 200
    if range_header:
        try:
            wanted = pages.parse_range(range_header, size)
        except ValueError:
            wanted = (0, size)  # a Range we do not support is ignored (RFC 9110 14.2)
        else:
            if wanted is None:
                headers.append(("Content-Range", f"bytes */{size}"))
                return HttpResponse(416, tuple(headers))
            status = 206
            headers.append(("Content-Range", f"bytes {wanted[0]}-{wanted[1] - 1}/{size}"))
        start, end = wanted
    return HttpResponse(
        status,
        tuple(headers),
        stream=lambda: pages.stream_large_object(start, end),
        length=end - start,
    )


async def blockpage_app(request: HttpRequest, conn: ConnectionInfo) -> HttpResponse:
    """The regulator's notice, whatever was asked (``?host=`` names the blocked host if given)."""
    host = parse_qs(request.query).get("host", [request.host])[0]
    return HttpResponse.html(200, pages.blockpage(host))


def _name_of_ip(ip: str) -> str:
    site = pages.site_for_ip(ip)
    return pages.primary_name(site) if site else ""


def _origin_form(request: HttpRequest) -> str:
    if request.target.startswith("/"):
        return request.target
    path = request.path
    return f"{path}?{request.query}" if request.query else path
