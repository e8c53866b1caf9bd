"""Budgeted bulk transfers, down (GET) and up (POST), sampled as (seconds, cumulative bytes).

A transfer ends when the byte budget is reached or the object ends (``completed``, 2xx only), at
the ``deadline`` (the time budget: not a failure once bytes have moved), or when no byte moved for
``stall`` seconds after the first one (``generic_timeout_error``: the throttle.stall signature).
A watcher samples every ``interval`` seconds; times are seconds since the transfer started.
Samples count bytes on the wire where the kernel tells (Linux ``TCP_INFO``: bytes received for a
download, bytes the server acknowledged for an upload, from the moment the request is sent), so a
policer's steady trickle shows even between 16 KiB TLS records and an upload's progress is not
hidden in socket buffers; elsewhere they count bytes read or handed to the socket. Progress (for
the stall cut-off) is either count growing. An upload counts, when the answer comes, only what
the server acknowledged: a server that answers before reading the body ends the upload there
without inflating its rate.
Transfers connect to ``ip`` with the URL's Host and an optional different SNI (the benign-SNI
control on the same path). They do not check certificates: that is the TLS step's job, and the
benign-SNI control could not pass it. Uploads use a small socket send buffer so bytes counted as
sent are close to bytes on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, cast

import httpx

from probe.model.failures import Failure
from probe.model.observations import Direction, ThroughputObservation
from probe.net.clock import Clock
from probe.net.errors import NETWORK_ERRORS, classify_exception
from probe.net.pinning import (
    MIN_WINDOW,
    TCP_WINDOW_CLAMP,
    PinnedTransport,
    SocketOption,
    window_clamp,
)
from probe.net.tlsclient import client_context

SAMPLE_INTERVAL = 0.1
# Seconds without progress, after the first byte, that end a transfer as stalled: longer than a
# policer's retransmission back-off (200 ms minimum RTO, doubled once or twice).
STALL = 1.5
UPLOAD_CHUNK = 16 * 1024
_UPLOAD_SNDBUF: SocketOption = (socket.SOL_SOCKET, socket.SO_SNDBUF, UPLOAD_CHUNK)


# struct tcp_info (linux/tcp.h): tcpi_bytes_acked at 120, tcpi_bytes_received at 128 (Linux 4.1+).
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_INFO_SIZE = 136
_WIRE_OFFSET: dict[Direction, int] = {"up": 120, "down": 128}


class _Socket(Protocol):
    """A socket, or asyncio's TransportSocket around one: what TCP_INFO needs."""

    def getsockopt(self, level: int, option: int, size: int, /) -> bytes: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


class _Wire:
    """Bytes of one TCP connection on the wire in one direction, from a base (None: unknown)."""

    def __init__(self, direction: Direction) -> None:
        self._offset = _WIRE_OFFSET[direction]
        self._sock: _Socket | None = None
        self._base: int | None = None

    def attach(self, sock: object) -> None:
        if callable(getattr(sock, "getsockopt", None)) and _TCP_INFO is not None:
            self._sock = cast(_Socket, sock)

    def clamp(self, size: int) -> None:
        """Keep the receive window at most ``size`` bytes from now on (where the kernel can)."""
        if self._sock is not None and TCP_WINDOW_CLAMP is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                self._sock.setsockopt(socket.IPPROTO_TCP, TCP_WINDOW_CLAMP, max(size, MIN_WINDOW))

    def start(self) -> None:
        """Count from now (the request is about to be sent)."""
        self._base = self._read()

    def count(self) -> int | None:
        now = self._read()
        if now is None or self._base is None:
            return None
        return max(now - self._base, 0)

    def _read(self) -> int | None:
        if self._sock is None or _TCP_INFO is None:
            return None
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
        except OSError:  # closed, or not TCP
            return None
        if len(info) < _TCP_INFO_SIZE:
            return None
        value: int = struct.unpack_from("=Q", info, self._offset)[0]
        return value


class _Meter:
    """Bytes moved so far, when the first response byte came, and the samples taken."""

    def __init__(self, direction: Direction) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._last_progress: float | None = None
        self._awaiting_reply = False
        self._seen = 0  # the highest count so far, app or wire: what progress is judged on
        self.wire = _Wire(direction)
        self.bytes = 0
        self.ttfb: float | None = None
        self.status: int | None = None
        self.samples: list[tuple[float, int]] = []
        self.wire_at_answer: int | None = None  # wire bytes when the response headers came
        self.answered_at: float | None = None

    async def trace(self, event: str, info: dict[str, object]) -> None:
        """httpcore's trace hook: find the socket, and start counting when the request goes."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            get_extra_info = getattr(stream, "get_extra_info", None)
            if get_extra_info is not None:
                self.wire.attach(get_extra_info("socket"))
        elif event == "http11.send_request_headers.started":
            self.wire.start()
        elif event == "http11.receive_response_headers.complete":
            self.wire_at_answer = self.wire.count()  # the connection may be closed after it
            self.answered_at = self.elapsed()

    def elapsed(self) -> float:
        return self._loop.time() - self._start

    def add(self, count: int) -> None:
        self.bytes += count
        self._progress(self.bytes)

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = round(self.elapsed(), 4)
            self._last_progress = self._loop.time()

    def await_reply(self) -> None:
        """Everything is handed to the socket: once it is acknowledged, waiting is not a stall."""
        self._awaiting_reply = True

    def idle(self) -> float:
        """Seconds since the last progress (0 before the first byte: not a stall yet)."""
        if self._awaiting_reply:
            wire = self.wire.count()
            if wire is None or wire >= self.bytes:
                return 0.0  # all sent (and acknowledged, when that can be told): the server's turn
        return 0.0 if self._last_progress is None else self._loop.time() - self._last_progress

    def settle_upload(self) -> None:
        """Count only what the server had acknowledged when its answer came (when the kernel
        tells): a server that answers before the body has arrived ends the upload there, and
        bytes still in socket buffers do not inflate its rate."""
        wire = self.wire_at_answer
        if wire is not None and wire < self.bytes:
            self.bytes = wire
            at = round(self.answered_at or self.elapsed(), 4)
            self.samples = [(t, min(count, wire)) for t, count in self.samples if t < at]
            self.samples.append((at, wire))

    def sample(self) -> None:
        wire = self.wire.count()
        count = self.bytes if wire is None else wire
        if self.samples:  # cumulative: the socket may close before the last sample
            count = max(count, self.samples[-1][1])
        self._progress(count)
        self.samples.append((round(self.elapsed(), 4), count))

    def _progress(self, count: int) -> None:
        if count > self._seen:
            self._seen = count
            self._last_progress = self._loop.time()


Transfer = Callable[[httpx.AsyncClient, _Meter], Awaitable[bool]]


async def download(
    url: str,
    *,
    ip: str | None,
    sni: str | None = None,
    control: bool = False,
    byte_budget: int,
    deadline: float,
    clock: Clock,
    stall: float = STALL,
    interval: float = SAMPLE_INTERVAL,
) -> ThroughputObservation:
    """Stream ``url`` from ``ip`` (SNI ``sni``, default the URL's host) within the budgets."""

    async def transfer(client: httpx.AsyncClient, meter: _Meter) -> bool:
        # A server that honours Range sends no more than the budget; one that does not is held
        # back by the receive window, narrowed to what the budget has left as the bytes come.
        headers = {"range": f"bytes=0-{max(byte_budget - 1, 0)}"}
        extensions = _extensions(sni, meter)
        request = client.build_request("GET", url, headers=headers, extensions=extensions)
        response = await client.send(request, stream=True)
        meter.status = response.status_code
        try:
            meter.first_byte()
            async for chunk in response.aiter_raw():
                meter.add(len(chunk))
                if meter.bytes >= byte_budget:
                    break
                meter.wire.clamp(byte_budget - meter.bytes)
            return response.is_success
        finally:
            await response.aclose()

    options = window_clamp(byte_budget)
    return await _measure(
        url, "down", transfer, options, ip, sni, control, deadline, clock, stall, interval
    )


async def upload(
    url: str,
    *,
    ip: str | None,
    sni: str | None = None,
    control: bool = False,
    byte_budget: int,
    deadline: float,
    clock: Clock,
    stall: float = STALL,
    interval: float = SAMPLE_INTERVAL,
) -> ThroughputObservation:
    """POST ``byte_budget`` bytes to ``url`` at ``ip`` in chunks, counting what was sent."""
    payload = b"\0" * UPLOAD_CHUNK

    async def transfer(client: httpx.AsyncClient, meter: _Meter) -> bool:
        async def body() -> AsyncIterator[bytes]:
            sent = 0
            while sent < byte_budget:
                size = min(UPLOAD_CHUNK, byte_budget - sent)
                if sent == 0:
                    meter.first_byte()
                yield payload[:size]
                sent += size
                meter.add(size)
            meter.await_reply()

        headers = {"content-type": "application/octet-stream"}
        request = client.build_request(
            "POST", url, content=body(), headers=headers, extensions=_extensions(sni, meter)
        )
        response = await client.send(request)
        meter.status = response.status_code
        meter.settle_upload()
        return response.is_success and meter.bytes >= byte_budget

    return await _measure(
        url, "up", transfer, (_UPLOAD_SNDBUF,), ip, sni, control, deadline, clock, stall, interval
    )


async def _measure(
    url: str,
    direction: Direction,
    transfer: Transfer,
    socket_options: tuple[SocketOption, ...],
    ip: str | None,
    sni: str | None,
    control: bool,
    deadline: float,
    clock: Clock,
    stall: float,
    interval: float,
) -> ThroughputObservation:
    """Run ``transfer`` under the watcher that samples it and ends it on stall or deadline."""
    t0 = clock.now()
    loop = asyncio.get_running_loop()
    host = urllib.parse.urlsplit(url).hostname or ""
    transport = PinnedTransport(
        {host: ip} if ip else {},
        ssl_context=client_context(None, verify=False),
        socket_options=socket_options,
    )
    meter = _Meter(direction)

    async def run() -> bool:
        async with httpx.AsyncClient(transport=transport) as client:
            return await transfer(client, meter)

    task = asyncio.ensure_future(run())
    stalled = False
    try:
        while not task.done():
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.wait({task}, timeout=min(interval, left))
            meter.sample()
            if meter.idle() >= stall:
                stalled = True
                break
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    seconds = meter.elapsed()
    completed = False
    failure: Failure | None = None
    if stalled:
        failure = Failure.TIMEOUT
    elif task.cancelled():  # the time budget ran out
        failure = None if meter.bytes else Failure.TIMEOUT
    elif (exc := task.exception()) is not None:
        if not isinstance(exc, NETWORK_ERRORS):
            raise exc
        failure = classify_exception(exc)
    else:
        completed = task.result()
    return ThroughputObservation(
        url=url,
        direction=direction,
        ip=ip,
        sni=sni or host,
        control=control,
        bytes=meter.bytes,
        seconds=round(seconds, 4),
        ttfb=meter.ttfb,
        samples=tuple(meter.samples),
        completed=completed,
        status=meter.status,
        failure=failure,
        t0=t0,
        t=clock.now(),
    )


def _extensions(sni: str | None, meter: _Meter) -> dict[str, object]:
    """Request extensions: the meter's trace hook, and ``sni`` instead of the URL's host."""
    extensions: dict[str, object] = {"trace": meter.trace}
    if sni:
        extensions["sni_hostname"] = sni
    return extensions
