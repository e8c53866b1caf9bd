"""An httpx transport that connects chosen host names to chosen addresses (no DNS for them).

URLs keep their real host, so the Host header, the TLS SNI, certificate checks, cookies and
same-host redirects all behave as for a normal fetch, while the TCP connection goes to the address
the probe measured. Hosts without a pin are resolved the usual way (the system resolver).
The transport owns its httpcore pool (httpx's custom-transport interface), so the pinning network
backend is the pool's from the start. The TLS context comes from ``probe.net.tlsclient``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping

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


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool of its own whose connections to ``pins`` hosts go
    to the pinned address; every request on a fresh connection, HTTP/1.1 only.

    httpx's documented custom-transport interface: ``handle_async_request`` maps an
    ``httpx.Request`` to httpcore's and the answer back, raising httpx's exceptions (the probe's
    errors table reads their httpcore cause), and ``aclose`` closes the pool.
    """

    def __init__(
        self,
        pins: Mapping[str, str],
        *,
        ssl_context: ssl.SSLContext,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=0,  # every request on a fresh connection
            http1=True,
            http2=False,
            socket_options=socket_options,
            network_backend=_PinnedBackend(pins),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the pool; the body streams as the caller reads it."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with httpx_errors():
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every connection of the pool."""
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    """A response body from httpcore, its errors raised as httpx's."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


# httpcore's exceptions and httpx's of the same name, the most specific first
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Raise an httpcore exception as httpx's of the same name, the httpcore one as its cause."""
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise
