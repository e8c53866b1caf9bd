"""DNS transport for the lab's name servers: UDP, TCP, and DNS-over-TLS (RFC 7858) framing.

A server is given an ``Answerer``: an async function from a query message to a response, or None
to stay silent (the ``drop`` policy action). Wire parsing is dnspython's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from censornet.servers.listen import TcpListener, bind_tcp, open_streams

log = logging.getLogger(__name__)

Answerer = Callable[[dns.message.Message], Awaitable[dns.message.Message | None]]
UDP_LIMIT = 512
TCP_IDLE_TIMEOUT = 30.0


async def answer_wire(wire: bytes, answer: Answerer, *, max_size: int = 65535) -> bytes | None:
    """The wire response to query ``wire`` (FORMERR for garbage with a header; None: silence)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        if len(wire) < 12:
            return None
        return _formerr(wire)
    if query.flags & dns.flags.QR:
        return None  # a response, not a query
    response = await answer(query)
    if response is None:
        return None
    limit = max_size
    if max_size == UDP_LIMIT and query.edns >= 0:
        limit = max(UDP_LIMIT, min(query.payload, 4096))
    data = response.to_wire()
    if len(data) > limit:
        response.flags |= dns.flags.TC
        for section in (response.answer, response.authority, response.additional):
            section.clear()
        data = response.to_wire()
    return data


class DnsServer:
    """Plain DNS on ``host:port`` over UDP and TCP, or DNS-over-TLS when ``tls`` is given."""

    def __init__(
        self, host: str, port: int, answer: Answerer, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._answer = answer
        self._tls = tls
        self._listener: TcpListener | None = None
        self._udp: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Bind (TCP, and UDP unless serving DoT) and start answering."""
        tcp = bind_tcp(self.host, self.port)
        self.port = tcp.getsockname()[1]  # port 0: UDP takes the same number as TCP
        self._listener = TcpListener([tcp], self._handle_stream)
        if self._tls is None:
            loop = asyncio.get_running_loop()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self._answer), local_addr=(self.host, self.port)
                )
            except BaseException:
                tcp.close()
                raise
            self._udp = transport
        self._listener.start()

    async def close(self) -> None:
        """Stop answering."""
        if self._udp is not None:
            self._udp.close()
        if self._listener is not None:
            await self._listener.close()

    async def _handle_stream(self, conn: socket.socket) -> None:
        reader, writer = await open_streams(conn, self._tls)
        while True:
            try:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    length = int.from_bytes(await reader.readexactly(2), "big")
                    wire = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, TimeoutError):
                return
            data = await answer_wire(wire, self._answer)
            if data is None:
                continue  # dropped: the client times out waiting
            writer.write(len(data).to_bytes(2, "big") + data)
            await writer.drain()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, answer: Answerer) -> None:
        self._answer = answer
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        task = asyncio.create_task(self._reply(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks:
            task.cancel()

    async def _reply(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            wire = await answer_wire(data, self._answer, max_size=UDP_LIMIT)
        except Exception:
            log.exception("DNS answer failed")
            return
        if wire is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(wire, addr)


def _formerr(wire: bytes) -> bytes:
    flags = int.from_bytes(wire[2:4], "big")
    response_flags = 0x8000 | (flags & 0x0100) | dns.rcode.FORMERR
    return wire[:2] + response_flags.to_bytes(2, "big") + bytes(8)
