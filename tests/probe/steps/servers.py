"""Local servers on 127.0.0.1 for the step and flow tests: DNS (UDP/TCP/DoT), HTTP(S), raw TCP.

Every server listens on an ephemeral port and is closed by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rrset
import h11
import trustme

LOOPBACK = "127.0.0.1"


@dataclass
class Zone:
    """How the test DNS server answers, by name (names without the trailing dot)."""

    addresses: dict[str, list[str]] = field(default_factory=dict)
    rcodes: dict[str, int] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    injected: dict[str, list[str]] = field(default_factory=dict)  # forged answer sent first
    ttl: int = 300

    def respond(self, wire: bytes) -> list[bytes]:
        """The responses to send to one query, in order (forged first when injected)."""
        query = dns.message.from_wire(wire)
        name = query.question[0].name.to_text().rstrip(".")
        if name in self.silent:
            return []
        replies = []
        if name in self.injected:
            replies.append(self._reply(query, self.injected[name], dns.rcode.NOERROR))
        rcode = self.rcodes.get(name, dns.rcode.NOERROR if name in self.addresses else 3)
        replies.append(self._reply(query, self.addresses.get(name, []), rcode))
        return replies

    def _reply(self, query: dns.message.Message, ips: list[str], rcode: int) -> bytes:
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.Rcode(rcode))
        question = query.question[0]
        wanted = [ip for ip in ips if (":" in ip) == (question.rdtype == 28)]
        if wanted and rcode == dns.rcode.NOERROR:
            rrset = dns.rrset.from_text_list(question.name, self.ttl, "IN", question.rdtype, wanted)
            reply.answer.append(rrset)
        return reply.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone, delay: float) -> None:
        self.zone = zone
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        replies = self.zone.respond(data)
        loop = asyncio.get_running_loop()
        for index, reply in enumerate(replies):
            assert self.transport is not None
            loop.call_later(index * self.delay, self.transport.sendto, reply, addr)


class DNSServer:
    """UDP and TCP (and, with ``ssl``, DoT) DNS on loopback, answering from a ``Zone``."""

    def __init__(self, zone: Zone, *, injection_delay: float = 0.05) -> None:
        self.zone = zone
        self.injection_delay = injection_delay
        self.port = 0
        self.tcp_port = 0
        self.tls_port = 0
        self._closers: list[Callable[[], object]] = []

    async def start(self, tls: ssl.SSLContext | None = None) -> DNSServer:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self.zone, self.injection_delay), local_addr=(LOOPBACK, 0)
        )
        self.port = udp.get_extra_info("sockname")[1]
        self._closers.append(udp.close)
        tcp = await asyncio.start_server(self._stream, LOOPBACK, 0)
        self.tcp_port = tcp.sockets[0].getsockname()[1]
        self._closers.append(tcp.close)
        if tls is not None:
            dot = await asyncio.start_server(self._stream, LOOPBACK, 0, ssl=tls)
            self.tls_port = dot.sockets[0].getsockname()[1]
            self._closers.append(dot.close)
        return self

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                replies = self.zone.respond(await reader.readexactly(size))
                if replies:
                    writer.write(struct.pack("!H", len(replies[-1])) + replies[-1])
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        for closer in self._closers:
            closer()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


class HTTPServer:
    """A tiny HTTP/1.1 server (one request per connection, parsed by h11) routing paths to
    handlers, which write their answers raw (a test may answer in ways no server library would).

    It records the Host headers it saw and, over TLS, the SNI of every handshake.
    """

    def __init__(self, routes: Mapping[str, Handler]) -> None:
        self.routes = routes
        self.hosts: list[str] = []
        self.snis: list[str | None] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._v6: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None, *, ipv6: bool = False) -> HTTPServer:
        """Listen on 127.0.0.1 and, with ``ipv6``, on ::1 at the same port."""
        if tls is not None:
            tls.sni_callback = self._record_sni
        for _ in range(20):
            self._server = await asyncio.start_server(self._serve, LOOPBACK, 0, ssl=tls)
            self.port = self._server.sockets[0].getsockname()[1]
            if not ipv6:
                return self
            try:
                self._v6 = await asyncio.start_server(self._serve, "::1", self.port, ssl=tls)
                return self
            except OSError:  # the port is taken on ::1: try another
                self._server.close()
        raise OSError("no port free on both 127.0.0.1 and ::1")

    def _record_sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.snis.append(name)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            self.hosts.append(request.headers.get("host", ""))
            handler = self.routes.get(request.path.split("?")[0], not_found)
            await handler(request, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, h11.ProtocolError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    def close(self) -> None:
        for server in (self._server, self._v6):
            if server is not None:
                server.close()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    """One request, body included, parsed by h11 (bytes after it are not used)."""
    conn = h11.Connection(h11.SERVER)
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(64 * 1024)
            if not data:
                raise asyncio.IncompleteReadError(bytes(body), None)
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {name.decode(): value.decode("latin-1") for name, value in head.headers}
            return Request(head.method.decode(), head.target.decode(), headers, bytes(body))
        else:
            raise asyncio.IncompleteReadError(bytes(body), None)


def respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    """Write one complete response."""
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", "connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


async def not_found(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 404, b"no")
    await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class RawServer:
    """A TCP server whose handler sees the raw connection (for resets, EOF, silence, alerts)."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ):
        self.handler = handler
        self.port = 0
        self._server: asyncio.Server | None = None
        self._v6: asyncio.Server | None = None

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self.handler, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def blackhole() -> tuple[socket.socket, list[socket.socket], int]:
    """A listener whose accept queue is full, so further SYNs go unanswered (a connect timeout).

    Returns the listener, the connections filling its queue (keep them open) and its port.
    """
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(2):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect((LOOPBACK, port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    return listener, fillers, port


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A TLS server context with a certificate from ``ca`` for ``names``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context
