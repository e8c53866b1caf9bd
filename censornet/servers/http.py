"""A small HTTP/1.1 server core on asyncio streams: parse requests, write responses.

Small on purpose: the lab needs control over when a connection is closed or reset, which full
frameworks hide. Supports Content-Length and chunked request bodies, keep-alive, HEAD.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
IDLE_TIMEOUT = 30.0


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
    """Parse a request head into an HttpRequest without a body."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError as exc:
        raise BadRequest("bad request line") from exc
    if not version.startswith("HTTP/1."):
        raise BadRequest(f"unsupported version {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers[name.strip().lower()] = value.strip()
    return HttpRequest(method.upper(), target, version, headers, head=head)


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """Read one whole request, body included (None when the client closed the connection)."""
    head = await read_head(reader)
    if not head:
        return None
    request = parse_head(head)
    body = await read_body(reader, request.headers)
    return HttpRequest(request.method, request.target, request.version, request.headers, body, head)


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """Read a request body framed by Content-Length or chunked transfer coding."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError as exc:
                raise BadRequest("bad chunk size") from exc
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(chunks)
            chunks += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(chunks) > MAX_BODY:
                raise BadRequest("body too large")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise BadRequest("bad Content-Length") from exc
    if length < 0 or length > MAX_BODY:
        raise BadRequest("bad Content-Length")
    return await reader.readexactly(length) if length else b""


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
    while True:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                request = await read_request(reader)
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
