"""An httpx transport that connects chosen host names to chosen addresses (no DNS for them).

URLs keep their real host, so the Host header, the TLS SNI, certificate checks, cookies and
same-host redirects all behave as for a normal fetch, while the TCP connection goes to the address
the probe measured. Hosts without a pin are resolved the usual way (the system resolver).
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _PinnedBackend(AsyncNetworkBackend):
    """A network backend that swaps pinned host names for their address on connect."""

    def __init__(self, pins: Mapping[str, str]) -> None:
        self._pins = {host.lower(): ip for host, ip in pins.items()}
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        """Connect to the pinned address of ``host`` (or ``host`` itself when not pinned)."""
        address = self._pins.get(host.lower().strip("[]"), host)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        """Unix sockets are not pinned."""
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running async library."""
        await self._inner.sleep(seconds)


MIN_WINDOW = 4096  # the smallest receive window asked for (the kernel has a floor of its own)
TCP_WINDOW_CLAMP: int | None = getattr(socket, "TCP_WINDOW_CLAMP", None)  # Linux only


def window_clamp(size: int) -> tuple[SocketOption, ...]:
    """Socket options that keep the receive window at most ``size`` bytes (Linux), so a server
    cannot push much more than the reader means to read into the socket's buffers."""
    if TCP_WINDOW_CLAMP is None:
        return ()
    return ((socket.IPPROTO_TCP, TCP_WINDOW_CLAMP, max(size, MIN_WINDOW)),)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections to ``pins`` hosts go to the pinned address."""

    def __init__(
        self,
        pins: Mapping[str, str],
        *,
        ssl_context: ssl.SSLContext,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        super().__init__(verify=ssl_context)
        # httpx builds its pool without a backend hook; replace it with one that pins.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=0,  # every request on a fresh connection
            http1=True,
            http2=False,
            socket_options=socket_options,
            network_backend=_PinnedBackend(pins),
        )


HTTP_ALPN = ("http/1.1",)  # what httpcore offers (it sets this on the context for each connect)


def client_context(
    ca_file: Path | None, *, verify: bool = True, alpn: tuple[str, ...] = HTTP_ALPN
) -> ssl.SSLContext:
    """A TLS client context trusting ``ca_file`` (or the system store); no checks if not verify.

    Contexts are shared (loading a trust store costs tens of milliseconds): one per trust store,
    verification and ALPN offer, which is set here so that users never change a shared context.
    A changed ``ca_file`` (another modification time) gets a new context.
    """
    stamp = None
    if verify and ca_file is not None:
        try:
            stamp = ca_file.stat().st_mtime_ns
        except OSError:
            stamp = None  # the load below raises the error a caller expects
    return _context(ca_file if verify else None, stamp, verify, alpn)


@functools.lru_cache(maxsize=16)
def _context(
    ca_file: Path | None, stamp: int | None, verify: bool, alpn: tuple[str, ...]
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # what create_default_context starts from
    if verify:
        if ca_file is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            context.load_verify_locations(cafile=ca_file)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context
