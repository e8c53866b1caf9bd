"""TCP connect to ``ip:port`` (IPv4 or IPv6): did the handshake complete, and how fast."""

from __future__ import annotations

import asyncio

from probe.model.failures import Failure
from probe.model.observations import TCPConnectObservation
from probe.net.clock import Clock
from probe.net.errors import NETWORK_ERRORS, classify_exception


async def connect(ip: str, port: int, *, deadline: float, clock: Clock) -> TCPConnectObservation:
    """Open and close one TCP connection to ``ip:port`` before ``deadline`` (loop time)."""
    t0 = clock.now()
    failure: Failure | None = None
    try:
        async with asyncio.timeout_at(deadline):
            _, writer = await asyncio.open_connection(ip, port)
        writer.close()
    except NETWORK_ERRORS as exc:
        failure = classify_exception(exc)
    return TCPConnectObservation(ip=ip, port=port, failure=failure, t0=t0, t=clock.now())
