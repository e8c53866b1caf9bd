"""A small HTTP/1.1 server core on asyncio streams: requests parsed by h11, responses written.

Small on purpose: the lab's censor middleboxes (proxy, blockpage and DoH fronts) need control
over when a connection is closed or reset, which full frameworks hide. h11 parses the requests
(Content-Length and chunked bodies, pipelining); keep-alive and HEAD are answered here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

import h11

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
IDLE_TIMEOUT = 30.0
READ_SIZE = 64 * 1024


class BadRequest(Exception):
    """The peer sent something that is not an HTTP/1.x request."""


@dataclass(frozen=True)
class HttpRequest:
    """One parsed request (headers lower-cased; body fully read)."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    head: bytes = field(default=b"", repr=False)  # the raw request head, CRLFCRLF included

    @property
    def path(self) -> str:
        """The path of the request target (no query)."""
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        """The query string of the request target."""
        return urlsplit(self.target).query

    @property
    def host(self) -> str:
        """The Host header without port, lower-cased ("" when absent)."""
        return host_without_port(self.headers.get("host", ""))

    @property
    def keep_alive(self) -> bool:
        """Whether the client allows the connection to be reused."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass(frozen=True)
class HttpResponse:
    """A response: status, headers, and either a body or a stream of chunks of known length."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    stream: Callable[[], AsyncIterator[bytes]] | None = None
    length: int | None = None  # Content-Length of ``stream``

    @classmethod
    def html(cls, status: int, text: str) -> HttpResponse:
        """An HTML response."""
        return cls(status, (("Content-Type", "text/html; charset=utf-8"),), text.encode())


Handler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


def host_without_port(value: str) -> str:
    """``example.org:8080`` -> ``example.org`` (IPv6 literals keep their brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]")[0] + "]"
    return value.rsplit(":", 1)[0] if ":" in value else value


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """Read a request head up to and including the blank line (b"" at clean EOF)."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return b""
        raise BadRequest("truncated request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large") from exc


def parse_head(head: bytes) -> HttpRequest:
    """Parse a request head (read by ``read_head``) into an HttpRequest without a body."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    connection.receive_data(head)
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError as exc:
        raise BadRequest(str(exc)) from exc
    if not isinstance(event, h11.Request):
        raise BadRequest("truncated request head")
    return _request(event, head=head)


class RequestReader:
    """Reads whole requests off one connection with h11; bytes the client sent past one request
    (a pipelined next request) are kept for the next."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._pending = b""

    async def next(self) -> HttpRequest | None:
        """The next request, body included (None when the client closed the connection)."""
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if self._pending:  # (an empty receive_data would mean end of stream to h11)
            connection.receive_data(self._pending)
            self._pending = b""
        request: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(str(exc)) from exc
            if event is h11.NEED_DATA:
                connection.receive_data(await self._reader.read(READ_SIZE))  # b"": EOF
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise BadRequest("body too large")
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                self._pending = bytes(connection.trailing_data[0])
                return _request(request, body=bytes(body))
            elif isinstance(event, h11.ConnectionClosed) and request is None:
                return None
            else:
                raise BadRequest(f"unexpected {type(event).__name__} while reading a request")


def _request(event: h11.Request, *, body: bytes = b"", head: bytes = b"") -> HttpRequest:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
    return HttpRequest(
        method=event.method.decode("ascii").upper(),
        target=event.target.decode("latin-1"),
        version="HTTP/" + event.http_version.decode("ascii"),
        headers=headers,
        body=body,
        head=head,
    )


async def write_response(
    writer: asyncio.StreamWriter, response: HttpResponse, *, head_only: bool, keep_alive: bool
) -> None:
    """Send ``response`` (headers, then body or stream) and drain."""
    length = response.length if response.stream is not None else len(response.body)
    reason = _reason(response.status)
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if head_only:
        await writer.drain()
        return
    if response.stream is None:
        writer.write(response.body)
        await writer.drain()
        return
    async for chunk in response.stream():
        writer.write(chunk)
        await writer.drain()


async def serve_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """Answer requests on one connection until the client or the handler ends it.

    ``handler`` returning None means: close the connection without answering.
    """
    requests = RequestReader(reader)
    while True:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                request = await requests.next()
        except BadRequest as exc:
            bad = HttpResponse.html(400, f"<html><body>Bad request: {exc}</body></html>")
            await write_response(writer, bad, head_only=False, keep_alive=False)
            return
        if request is None:
            return
        response = await handler(request)
        if response is None:
            return
        keep_alive = request.keep_alive
        await write_response(
            writer, response, head_only=request.method == "HEAD", keep_alive=keep_alive
        )
        if not keep_alive:
            return


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
