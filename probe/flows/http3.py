"""The HTTP/3 part of an endpoint's flow: QUIC handshakes beside the TCP path, with their control.

For an endpoint the platform file marks ``http3``, on each address the DNS answered (at most
``MAX_ADDRESSES``): a QUIC handshake with the platform SNI followed by a small HTTP/3 GET of the
endpoint's path, retried on a fresh connection like every step, and, as control, a QUIC handshake
with the benign SNI to the same address. Both run concurrently with the TCP connects and TLS
handshakes, so the QUIC step adds at most one handshake timeout to the endpoint. The TCP+TLS
result to the same host, the other control, is the web flow's own.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence

from probe.flows.plan import EndpointPlan, MeasureSettings
from probe.model.observations import QUICObservation
from probe.net.clock import Clock
from probe.steps import quic

MAX_ADDRESSES = 2
RetryStep = Callable[
    [Callable[[float], Awaitable[QUICObservation]], float], Awaitable[list[QUICObservation]]
]


async def measure(
    plan: EndpointPlan,
    addresses: Sequence[str],
    settings: MeasureSettings,
    clock: Clock,
    retry: RetryStep,
    *,
    controls: bool,
) -> list[QUICObservation]:
    """Every QUIC try for ``plan`` on ``addresses`` (platform SNI, then benign SNI), in order."""
    parts = urllib.parse.urlsplit(plan.url)
    host = parts.hostname or ""
    port = parts.port or 443
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not quic.available():  # one observation says why nothing was sent
        return [await _shake(settings, clock, addresses[0] if addresses else host, host, port)(0.0)]

    runs: list[Awaitable[list[QUICObservation]]] = []
    for ip in addresses[:MAX_ADDRESSES]:
        runs.append(retry(_shake(settings, clock, ip, host, port, path=path), _within(settings)))
        if controls:
            benign = _shake(settings, clock, ip, settings.benign_sni, port, control=True)
            runs.append(retry(benign, _within(settings)))
    tries = await asyncio.gather(*runs)
    return [obs for one in tries for obs in one]


def _within(settings: MeasureSettings) -> float:
    """The time every try of one QUIC handshake shares: the TLS handshake's."""
    return settings.timeouts.tls_handshake


def _shake(
    settings: MeasureSettings,
    clock: Clock,
    ip: str,
    sni: str,
    port: int,
    *,
    path: str | None = None,
    control: bool = False,
) -> Callable[[float], Awaitable[QUICObservation]]:
    return lambda deadline: quic.handshake(
        ip,
        sni,
        port=port,
        deadline=deadline,
        clock=clock,
        ca_file=settings.ca_file,
        control=control,
        path=path,
        user_agent=settings.user_agent,
    )
