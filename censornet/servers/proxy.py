"""An ISP's transparent proxy: HTTP (Host) and TLS (SNI) filtering of redirected connections.

The censor redirects vantage traffic with ``iptables -t nat ... -j REDIRECT --to-ports 8080/8443``;
the proxy reads the request head or the ClientHello, applies the ``http_proxy``/``tls_proxy``
rules (blockpage, redirect, reset; eof, alert) and otherwise connects to the original destination
(``SO_ORIGINAL_DST``), replays what it read, and splices both directions.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from censornet import topology
from censornet.policy import HttpRule, Policy, TlsRule, name_matches
from censornet.servers import pages
from censornet.servers.clienthello import ALERT_HANDSHAKE_FAILURE, parse_sni, read_client_hello
from censornet.servers.http import BadRequest, HttpResponse, parse_head, read_head, write_response
from censornet.servers.listen import (
    TcpListener,
    abort_with_reset,
    bind_tcp,
    close_writer,
    open_streams,
)

log = logging.getLogger(__name__)

SO_ORIGINAL_DST = 80
HTTP_PORT = 8080
TLS_PORT = 8443
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 15.0
_COPY_SIZE = 256 * 1024

Destination = tuple[str, int]
OriginalDestination = Callable[[socket.socket], Destination]


def original_destination(conn: socket.socket) -> Destination:
    """Where a REDIRECTed connection was going, from netfilter's ``SO_ORIGINAL_DST``."""
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    return socket.inet_ntoa(raw[4:8]), int.from_bytes(raw[2:4], "big")


def http_rule(policy: Policy, host: str) -> HttpRule | None:
    """The first ``http_proxy`` rule covering ``host``."""
    return next((r for r in policy.http_proxy if host and name_matches(host, r.suffix)), None)


def tls_rule(policy: Policy, sni: str | None) -> TlsRule | None:
    """The first ``tls_proxy`` rule covering ``sni``."""
    return next((r for r in policy.tls_proxy if sni and name_matches(sni, r.suffix)), None)


class TransparentProxy:
    """Listens on ``http_port`` and ``tls_port`` of ``host`` and filters by the current policy."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        *,
        host: str = "0.0.0.0",
        http_port: int = HTTP_PORT,
        tls_port: int = TLS_PORT,
        destination: OriginalDestination = original_destination,
    ) -> None:
        self.host = host
        self.http_port = http_port
        self.tls_port = tls_port
        self._policy = policy
        self._destination = destination
        self._listeners: list[TcpListener] = []

    async def start(self) -> None:
        """Bind both ports and start accepting."""
        http_sock = bind_tcp(self.host, self.http_port)
        try:
            tls_sock = bind_tcp(self.host, self.tls_port)
        except OSError:
            http_sock.close()
            raise
        self.http_port = http_sock.getsockname()[1]
        self.tls_port = tls_sock.getsockname()[1]
        self._listeners = [
            TcpListener([http_sock], self._handle_http),
            TcpListener([tls_sock], self._handle_tls),
        ]
        for listener in self._listeners:
            listener.start()

    async def close(self) -> None:
        """Stop accepting and drop proxied connections."""
        for listener in self._listeners:
            await listener.close()

    async def _handle_http(self, conn: socket.socket) -> None:
        destination = self._checked_destination(conn)
        reader, writer = await open_streams(conn)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await read_head(reader)
            request = parse_head(head) if head else None
        except (BadRequest, TimeoutError):
            return
        if request is None or destination is None:
            return
        host = request.host
        rule = http_rule(self._policy(), host)
        if rule is not None:
            log.info("http proxy: %s for Host %s (to %s:%s)", rule.action, host, *destination)
        if rule is not None and rule.action == "reset":
            abort_with_reset(writer)
            return
        if rule is not None and rule.action == "blockpage":
            page = HttpResponse.html(200, pages.blockpage_frame(host))
            await write_response(writer, page, head_only=False, keep_alive=False)
            return
        if rule is not None and rule.action == "redirect":
            location = f"http://{topology.BLOCKPAGE_NAME}/?host={host}"
            moved = HttpResponse(302, (("Location", location),))
            await write_response(writer, moved, head_only=False, keep_alive=False)
            return
        await self._forward(reader, writer, destination, head)

    async def _handle_tls(self, conn: socket.socket) -> None:
        destination = self._checked_destination(conn)
        reader, writer = await open_streams(conn)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                hello = await read_client_hello(reader)
        except (ValueError, TimeoutError):
            return
        if destination is None:
            return
        sni = parse_sni(hello)
        rule = tls_rule(self._policy(), sni)
        if rule is not None:
            log.info("tls proxy: %s for SNI %s (to %s:%s)", rule.action, sni, *destination)
        if rule is not None and rule.action == "eof":
            return  # the accept loop closes the stream: FIN, no alert
        if rule is not None and rule.action == "alert":
            writer.write(ALERT_HANDSHAKE_FAILURE)
            await writer.drain()
            return
        await self._forward(reader, writer, destination, hello)

    def _checked_destination(self, conn: socket.socket) -> Destination | None:
        try:
            destination = self._destination(conn)
        except OSError as exc:
            log.warning("no original destination: %s", exc)
            return None
        local = conn.getsockname()[:2]
        if destination[1] == local[1] and destination[0] in (local[0], "0.0.0.0", "127.0.0.1"):
            log.warning("connection addressed to the proxy itself (%s:%s); closing", *local)
            return None
        return destination

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        destination: Destination,
        first_bytes: bytes,
    ) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(*destination)
        except ConnectionRefusedError:
            abort_with_reset(writer)
            return
        except (OSError, TimeoutError) as exc:
            log.info("proxy upstream %s:%s failed: %r", *destination, exc)
            return
        try:
            up_writer.write(first_bytes)
            await up_writer.drain()
            await splice(reader, writer, up_reader, up_writer)
        finally:
            await close_writer(up_writer)


async def splice(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy both directions until both ends are done; a reset on one side resets the other."""
    await asyncio.gather(_pump(a_reader, b_writer), _pump(b_reader, a_writer))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_COPY_SIZE):
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        abort_with_reset(writer)  # pass the RST on
        return
    except OSError:
        writer.transport.abort()
        return
    if not writer.is_closing() and writer.can_write_eof():
        try:
            writer.write_eof()
        except OSError:
            return
