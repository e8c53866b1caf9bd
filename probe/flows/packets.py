"""Packet-level evidence for an endpoint that failed: who reset it, what DNS really sent, where.

Runs only after the application-level steps saw interference (over one address family per
endpoint: IPv4 when both saw it), only when the process can capture
packets (root or CAP_NET_RAW; said once otherwise), only toward the addresses DNS gave for the
platform's own names, and within a bounded time. Each result becomes a ``PacketObservation``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import TypeVar

from probe.flows.plan import EndpointPlan, MeasureSettings
from probe.model.failures import Failure
from probe.model.observations import (
    DNSObservation,
    HTTPObservation,
    PacketObservation,
    TCPConnectObservation,
    TLSHandshakeObservation,
)
from probe.net.capture import raw_sockets_available
from probe.net.clock import Clock
from probe.net.family import family_of
from probe.net.triggers import Trigger
from probe.steps.centrace import locate_censor
from probe.steps.dnspackets import dns_evidence
from probe.steps.packets import AllowCheck, reset_evidence

Obs = TypeVar("Obs", TLSHandshakeObservation, HTTPObservation)
BUDGET = 3.0  # seconds of packet work per endpoint, at most
TLS_INTERFERENCE = frozenset({Failure.CONNECTION_RESET, Failure.EOF, Failure.TIMEOUT})


async def collect(
    plan: EndpointPlan,
    settings: MeasureSettings,
    clock: Clock,
    *,
    lookups: Sequence[DNSObservation],
    connects: Sequence[TCPConnectObservation],
    handshakes: Sequence[TLSHandshakeObservation],
    fetches: Sequence[HTTPObservation],
) -> tuple[PacketObservation, ...]:
    """Packet evidence for what failed at this endpoint (nothing when nothing failed).

    Only addresses that accept TCP connections are probed: the triggers ride on a connection, and
    an address that is blackholed outright has nothing more to tell.
    """
    reachable = {c.ip for c in connects if c.failure is None}
    handshakes = [h for h in handshakes if h.ip in reachable]
    if not settings.packet_evidence or not any(
        (_injected_dns(lookups), _failed_tls(handshakes), _failed_http(plan, fetches))
    ):
        return ()
    if not raw_sockets_available():
        return ()
    addresses = {a for q in lookups for a in q.addresses}

    def allow(host: str, ip: str) -> bool:
        owned = any(host == d or host.endswith("." + d) for d in plan.platform_domains)
        return owned and ip in addresses

    deadline = asyncio.get_running_loop().time() + BUDGET
    jobs: list[Coroutine[None, None, PacketObservation | None]] = []
    tls_failure = _failed_tls(handshakes)
    if tls_failure is not None:
        if tls_failure.failure is Failure.CONNECTION_RESET:
            jobs.append(_reset(tls_failure, clock, deadline, allow))
        jobs.append(_locate(tls_failure.ip, tls_failure.sni, "tls", clock, deadline, allow))
    http_failure = _failed_http(plan, fetches)
    if http_failure is not None and http_failure.ip is not None:
        jobs.append(_locate(http_failure.ip, plan.domain, "http", clock, deadline, allow))
    dns_query = _injected_dns(lookups)
    if dns_query is not None:
        jobs.append(_dns(dns_query, settings.benign_sni, clock, deadline))
    found = await asyncio.gather(*jobs)
    return tuple(o for o in found if o is not None)


def _failed_tls(handshakes: Sequence[TLSHandshakeObservation]) -> TLSHandshakeObservation | None:
    """The first platform-SNI handshake that met interference (IPv4's when both families did)."""
    return _first_by_family(
        h for h in handshakes if not h.control and h.failure in TLS_INTERFERENCE
    )


def _failed_http(plan: EndpointPlan, fetches: Sequence[HTTPObservation]) -> HTTPObservation | None:
    """The first cleartext fetch reset or timed out (IPv4's when both families were)."""
    if not plan.url.startswith("http://"):
        return None
    return _first_by_family(
        f for f in fetches if f.failure in (Failure.CONNECTION_RESET, Failure.TIMEOUT)
    )


def _first_by_family(found: Iterable[Obs]) -> Obs | None:
    """The first of ``found`` over IPv4, else over IPv6: one family's packet work per endpoint,
    so that measuring both families does not double it."""
    items = list(found)
    for family in ("ipv4", "ipv6"):
        for item in items:
            if family_of(item.ip or "") == family:
                return item
    return None


def _injected_dns(lookups: Sequence[DNSObservation]) -> DNSObservation | None:
    return next((q for q in lookups if q.late_answers and q.transport in ("system", "udp")), None)


async def _reset(
    handshake: TLSHandshakeObservation, clock: Clock, deadline: float, allow: AllowCheck
) -> PacketObservation:
    t0 = clock.now()
    evidence = await reset_evidence(
        handshake.ip, handshake.sni, port=handshake.port, deadline=deadline, allow=allow
    )
    return PacketObservation(
        kind="reset",
        target=handshake.sni,
        ip=handshake.ip,
        injected=evidence.injected if evidence.rst_ttl is not None else None,
        ttls=evidence.rst_ttls,
        packets=evidence.packets,
        description=evidence.description,
        t0=t0,
        t=clock.now(),
    )


async def _locate(
    ip: str, host: str, trigger: Trigger, clock: Clock, deadline: float, allow: AllowCheck
) -> PacketObservation | None:
    t0 = clock.now()
    try:
        location = await locate_censor(ip, host, allow=allow, deadline=deadline, trigger=trigger)
    except ValueError:
        return None  # not an address the platform's names resolved to: never probed
    return PacketObservation(
        kind="censor_location",
        target=host,
        ip=ip,
        hop=location.hop,
        router=location.router or location.previous_router,
        packets=location.packets,
        description=location.description,
        t0=t0,
        t=clock.now(),
    )


async def _dns(
    query: DNSObservation, reference: str, clock: Clock, deadline: float
) -> PacketObservation | None:
    resolver = query.resolver.partition(":")[2] or query.resolver
    ip, _, port = resolver.rpartition(":") if resolver.count(":") == 1 else (resolver, "", "")
    t0 = clock.now()
    evidence = await dns_evidence(
        query.domain,
        ip or resolver,
        port=int(port) if port else 53,
        deadline=deadline,
        reference_domain=reference,
    )
    return PacketObservation(
        kind="dns",
        target=query.domain,
        ip=ip or resolver,
        injected=evidence.injected,
        ttls=tuple(r.ip_ttl for r in evidence.responses),
        packets=evidence.packets,
        description=evidence.description,
        t0=t0,
        t=clock.now(),
    )
