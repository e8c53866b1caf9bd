"""Listening sockets and accept loops, including TLS that picks its context from a peeked SNI.

The lab's TLS servers decide before the handshake (close at once, which certificate, which minted
interception certificate), so they accept plain TCP, peek at the ClientHello with MSG_PEEK, and
only then hand the socket to asyncio's TLS transport. Nothing is consumed by the peek.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import weakref
from collections.abc import Awaitable, Callable, Iterable

from censornet.servers.clienthello import MAX_CLIENT_HELLO, hello_bytes_needed, parse_sni

log = logging.getLogger(__name__)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
SocketHandler = Callable[[socket.socket], Awaitable[None]]
PEEK_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
_STREAM_LIMIT = 256 * 1024
IP_FREEBIND = 15  # linux/in.h; not exported by the socket module
# Streams opened on accepted sockets, so the accept loop can close them when a handler is done.
_writers: weakref.WeakKeyDictionary[socket.socket, asyncio.StreamWriter] = (
    weakref.WeakKeyDictionary()
)


def bind_tcp(host: str, port: int, *, backlog: int = 512) -> socket.socket:
    """A non-blocking listening TCP socket on ``host:port`` (SO_REUSEADDR, IP_FREEBIND)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_tcp_all(hosts: Iterable[str], port: int) -> list[socket.socket]:
    """Listening sockets on ``port`` of every host; port 0 picks one free port for all of them."""
    socks: list[socket.socket] = []
    try:
        for host in hosts:
            socks.append(bind_tcp(host, port))
            port = socks[0].getsockname()[1]
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


class TcpListener:
    """Accepts connections on several listening sockets and runs ``handler`` per socket."""

    def __init__(self, socks: Iterable[socket.socket], handler: SocketHandler) -> None:
        self.sockets = list(socks)
        self._handler = handler
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start accepting on every socket."""
        self._accepting = [asyncio.create_task(self._accept(s)) for s in self.sockets]

    async def close(self) -> None:
        """Stop accepting, cancel running connections and close the sockets."""
        for task in (*self._accepting, *self._tasks):
            task.cancel()
        await asyncio.gather(*self._accepting, *self._tasks, return_exceptions=True)
        for sock in self.sockets:
            sock.close()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                log.warning("accept on %s failed: %s", listener.getsockname(), exc)
                await asyncio.sleep(0.05)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(self._run(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: socket.socket) -> None:
        try:
            await self._handler(conn)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ssl.SSLError,
            TimeoutError,
        ) as exc:
            log.debug("connection ended: %r", exc)
        except Exception:
            log.exception("connection handler failed")
        finally:
            writer = _writers.pop(conn, None)
            if writer is not None:
                await close_writer(writer)
            elif conn.fileno() != -1:
                conn.close()


async def peek_client_hello(conn: socket.socket) -> bytes:
    """The ClientHello bytes waiting on ``conn``, read with MSG_PEEK (b"" when not TLS / EOF)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(PEEK_TIMEOUT):
        while True:
            await _wait_readable(loop, conn)
            data = conn.recv(MAX_CLIENT_HELLO + 1, socket.MSG_PEEK)
            if not data:
                return b""
            try:
                needed = hello_bytes_needed(data)
            except ValueError:
                return b""
            if needed is not None:
                return data[:needed]
            await asyncio.sleep(0.005)  # partial ClientHello: wait for the next segment


def peeked_sni(hello: bytes) -> str | None:
    """The SNI of a peeked ClientHello."""
    return parse_sni(hello) if hello else None


async def open_streams(conn: socket.socket, context: ssl.SSLContext | None = None) -> Streams:
    """Wrap an accepted socket into asyncio streams, completing a server TLS handshake if asked."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol,
        conn,
        ssl=context,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if context else None,
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    _writers[conn] = writer
    return reader, writer


def abort_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with SO_LINGER 0 so that the kernel sends a RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream writer, ignoring errors from an already dead peer."""
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
        async with asyncio.timeout(2):
            await writer.wait_closed()


async def _wait_readable(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
