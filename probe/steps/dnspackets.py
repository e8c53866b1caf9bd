"""DNS injection seen at packet level: every response to one query, with the IP TTL it came with.

``dns_evidence`` sends one UDP query and captures every response for ``window`` seconds after
the first (the ``dns`` step keeps late answers too, at socket level). Packets add what a socket
cannot see: the IP TTL (and IP ID) of each response. An on-path injector answers from its own
place in the network, so its forged answer usually arrives with another IP TTL than the
resolver's. With ``reference_domain`` (a name nobody censors) the resolver's own IP TTL is
measured first, and ``judge_dns`` names the responses that do not match it as ``suspect``.
Conflicting answers to one query are ``injected`` (verdict method ``dns.injected``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from probe.model.base import FrozenModel
from probe.net.capture import Capture, Captured, raw_sockets_available
from probe.steps.packets import NOT_AVAILABLE, AllowCheck, check_allowed

WINDOW = 0.5  # seconds to keep listening after the first response


class DnsResponsePacket(FrozenModel):
    """One response to the query, as it arrived."""

    ip_ttl: int
    ip_id: int
    delay: float  # seconds after the query left
    rcode: str
    addresses: tuple[str, ...] = ()


class DnsPacketEvidence(FrozenModel):
    """Every response one query got, and what their answers and IP TTLs say."""

    available: bool
    domain: str
    resolver: str  # "IP" or "IP:PORT"
    responses: tuple[DnsResponsePacket, ...] = ()
    reference_ttl: int | None = None  # IP TTL of the resolver's answer for the reference name
    conflicting: bool = False  # two or more different answers to one query
    ttls_differ: bool = False  # the responses came with different IP TTLs
    suspect: tuple[int, ...] = ()  # indexes of responses whose IP TTL is not the resolver's
    injected: bool = False
    packets: int = 0  # queries and responses captured
    seconds: float = 0.0
    description: str


async def dns_evidence(
    domain: str,
    resolver_ip: str,
    *,
    port: int = 53,
    deadline: float,
    window: float = WINDOW,
    reference_domain: str | None = None,
    allow: AllowCheck | None = None,
) -> DnsPacketEvidence:
    """Query ``resolver_ip`` for ``domain``'s A records once; judge every response's packets."""
    check_allowed(allow, domain, resolver_ip)
    resolver = resolver_ip if port == 53 else f"{resolver_ip}:{port}"
    if not raw_sockets_available():
        return DnsPacketEvidence(
            available=False, domain=domain, resolver=resolver, description=NOT_AVAILABLE
        )
    loop = asyncio.get_running_loop()
    start = loop.time()
    reference_ttl: int | None = None
    packets = 0
    if reference_domain is not None:
        reference, seen = await _query(reference_domain, resolver_ip, port, deadline, 0.0)
        reference_ttl = reference[0].ip_ttl if reference else None
        packets += seen
    responses, seen = await _query(domain, resolver_ip, port, deadline, window)
    return judge_dns(
        domain,
        resolver,
        responses,
        reference_ttl=reference_ttl,
        packets=packets + seen,
        seconds=loop.time() - start,
    )


def judge_dns(
    domain: str,
    resolver: str,
    responses: Sequence[DnsResponsePacket],
    *,
    reference_ttl: int | None = None,
    packets: int = 0,
    seconds: float = 0.0,
) -> DnsPacketEvidence:
    """What the responses to one query for ``domain`` show (pure)."""
    answers = {(r.rcode, tuple(sorted(r.addresses))) for r in responses}
    ttls = {r.ip_ttl for r in responses}
    conflicting = len(answers) > 1
    suspect: tuple[int, ...] = ()
    if reference_ttl is not None:
        suspect = tuple(i for i, r in enumerate(responses) if r.ip_ttl != reference_ttl)
    listed = "; ".join(
        f"{' '.join(r.addresses) or r.rcode} (IP TTL {r.ip_ttl}, after {r.delay * 1000:.1f} ms)"
        for r in responses
    )
    if not responses:
        text = f"no response from {resolver} for {domain}"
    else:
        count = "1 response" if len(responses) == 1 else f"{len(responses)} responses"
        text = f"{count} to one query for {domain} from {resolver}: {listed}"
    if conflicting:
        text += "; the answers conflict (on-path injection)"
    if reference_ttl is not None and responses:
        text += f"; the resolver's own answers arrive with IP TTL {reference_ttl}"
        if suspect:
            odd = ", ".join(str(responses[i].ip_ttl) for i in suspect)
            text += f", so the response(s) with IP TTL {odd} came from elsewhere on the path"
    elif len(ttls) > 1:
        text += f"; they arrived with different IP TTLs ({', '.join(map(str, sorted(ttls)))})"
    return DnsPacketEvidence(
        available=True,
        domain=domain,
        resolver=resolver,
        responses=tuple(responses),
        reference_ttl=reference_ttl,
        conflicting=conflicting,
        ttls_differ=len(ttls) > 1,
        suspect=suspect,
        injected=conflicting,
        packets=packets,
        seconds=round(seconds, 4),
        description=text,
    )


async def _query(
    domain: str, resolver_ip: str, port: int, deadline: float, window: float
) -> tuple[list[DnsResponsePacket], int]:
    """One A query; the responses captured until ``window`` after the first, and packets seen."""
    loop = asyncio.get_running_loop()
    query = dns.message.make_query(domain, dns.rdatatype.A)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        async with Capture(resolver_ip) as capture:
            try:
                sock.connect((resolver_ip, port))
                local_port = sock.getsockname()[1]
                sent = loop.time()
                sock.send(query.to_wire())
            except OSError:
                return [], 0  # no route: nothing was sent
            answered = await capture.wait_for(
                lambda seen: bool(_responses(seen, query, resolver_ip, port, local_port, sent)),
                deadline,
            )
            if answered and window > 0:
                await capture.wait_for(lambda _: False, min(deadline, loop.time() + window))
        found = _responses(capture.packets, query, resolver_ip, port, local_port, sent)
        ours = sum(
            1
            for c in capture.packets
            if local_port in (c.packet.sport, c.packet.dport)
            and c.packet.proto == socket.IPPROTO_UDP
        )
    return found, ours


def _responses(
    seen: Sequence[Captured],
    query: dns.message.Message,
    resolver_ip: str,
    port: int,
    local_port: int,
    sent: float,
) -> list[DnsResponsePacket]:
    """The captured UDP packets from the resolver to our port that answer ``query``."""
    found: list[DnsResponsePacket] = []
    for item in seen:
        packet = item.packet
        if item.outgoing or packet.proto != socket.IPPROTO_UDP:
            continue
        if (packet.src, packet.sport, packet.dport) != (resolver_ip, port, local_port):
            continue
        try:
            message = dns.message.from_wire(packet.payload)
        except dns.exception.DNSException:
            continue
        if not query.is_response(message):
            continue
        addresses = tuple(
            rdata.to_text()
            for rrset in message.answer
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            for rdata in rrset
        )
        found.append(
            DnsResponsePacket(
                ip_ttl=packet.ttl,
                ip_id=packet.ip_id,
                delay=round(max(0.0, item.at - sent), 6),
                rcode=dns.rcode.to_text(message.rcode()),
                addresses=addresses,
            )
        )
    return found
