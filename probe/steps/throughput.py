"""Budgeted bulk transfers, down (GET) and up (POST), sampled as (seconds, cumulative bytes).

A transfer ends when the byte budget is reached or the object ends (``completed``, 2xx only), at
the ``deadline`` (the time budget: not a failure once bytes have moved), or when no byte moved for
``stall`` seconds after the first one (``generic_timeout_error``: the throttle.stall signature).
A watcher samples every ``interval`` seconds; times are seconds since the transfer started.
Transfers connect to ``ip`` with the URL's Host and an optional different SNI (the benign-SNI
control on the same path). They do not check certificates: that is the TLS step's job, and the
benign-SNI control could not pass it. Uploads use a small socket send buffer so bytes counted as
sent are close to bytes on the wire.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from probe.model.failures import Failure
from probe.model.observations import Direction, ThroughputObservation
from probe.steps._clock import Clock
from probe.steps._errors import NETWORK_ERRORS, classify_exception
from probe.steps._pinning import PinnedTransport, SocketOption, client_context

SAMPLE_INTERVAL = 0.1
STALL = 1.0  # seconds without a byte, after the first, that end a transfer as stalled
UPLOAD_CHUNK = 16 * 1024
_UPLOAD_SNDBUF: SocketOption = (socket.SOL_SOCKET, socket.SO_SNDBUF, UPLOAD_CHUNK)


class _Meter:
    """Bytes moved so far, when the first response byte came, and the samples taken."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._last_progress: float | None = None
        self.bytes = 0
        self.ttfb: float | None = None
        self.samples: list[tuple[float, int]] = []

    def elapsed(self) -> float:
        return self._loop.time() - self._start

    def add(self, count: int) -> None:
        self.bytes += count
        self._last_progress = self._loop.time()

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = round(self.elapsed(), 4)
            self._last_progress = self._loop.time()

    def await_reply(self) -> None:
        """Everything is sent: waiting for the reply is not a stall."""
        self._last_progress = None

    def idle(self) -> float:
        """Seconds since the last progress (0 before the first byte: not a stall yet)."""
        return 0.0 if self._last_progress is None else self._loop.time() - self._last_progress

    def sample(self) -> None:
        self.samples.append((round(self.elapsed(), 4), self.bytes))


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
        request = client.build_request("GET", url, extensions=_sni(sni))
        response = await client.send(request, stream=True)
        try:
            meter.first_byte()
            async for chunk in response.aiter_raw():
                meter.add(len(chunk))
                if meter.bytes >= byte_budget:
                    break
            return response.is_success
        finally:
            await response.aclose()

    return await _measure(
        url, "down", transfer, (), ip, sni, control, deadline, clock, stall, interval
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
            "POST", url, content=body(), headers=headers, extensions=_sni(sni)
        )
        response = await client.send(request)
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
    meter = _Meter()

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
        failure=failure,
        t0=t0,
        t=clock.now(),
    )


def _sni(sni: str | None) -> dict[str, object]:
    """Request extensions that send ``sni`` instead of the URL's host (none when None)."""
    return {"sni_hostname": sni} if sni else {}
