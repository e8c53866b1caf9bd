"""DNS lookups through one chosen resolver over UDP, TCP, DoH or DoT, keeping rcodes and TTLs.

Resolver strings (``parse_resolver``):

- ``udp:IP[:PORT]``, ``tcp:IP[:PORT]``, ``tls:IP[:PORT][#NAME]`` (DoT, the certificate is checked
  for NAME, or for the IP when no name is given); IPv6 as ``udp:[::1]:53``.
- ``https://HOST[:PORT]/PATH[#IP]`` (DoH). The fragment is the bootstrap address: the connection
  goes to IP while the URL, Host and SNI keep HOST, so ``https://dns.control.lab/dns-query#198.18.103.53``
  needs no DNS to reach the lab's control resolver. Without a fragment HOST is resolved by the
  system. The fragment is never sent (it is not part of an HTTP request).

"System" is the first ``nameserver`` of ``/etc/resolv.conf`` (the lab bind-mounts one per vantage
point), queried over UDP with this module's own client so the rcode is kept. Over UDP the socket
stays open ``late_window`` seconds after the first response, and further responses to the same
query id are kept as ``late_answers``: on-path injection races the real resolver, so a censored
lookup shows two answers. DoH is RFC 8484 POST over httpx, written here rather than through
``dns.asyncquery.https`` because dnspython 2.9 needs the separate ``httpx2`` package for it.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import httpx

from probe.model.failures import Failure
from probe.model.observations import DNSAnswer, DNSObservation
from probe.net.clock import Clock
from probe.net.errors import NETWORK_ERRORS, classify_exception
from probe.net.pinning import PinnedTransport
from probe.net.tlsclient import client_context
from probe.steps.resolvers import Resolver, parse_resolver, system_resolver

__all__ = [
    "DEFAULT_LATE_WINDOW",
    "EarlyAnswer",
    "QType",
    "Resolver",
    "parse_resolver",
    "resolve",
    "system_resolver",
]

DEFAULT_LATE_WINDOW = 0.5  # seconds to wait for duplicate UDP responses (OONI waits 500 ms)

QType = Literal["A", "AAAA"]

_RCODE_FAILURES = {
    dns.rcode.NXDOMAIN: Failure.DNS_NXDOMAIN,
    dns.rcode.SERVFAIL: Failure.DNS_SERVFAIL,
    dns.rcode.REFUSED: Failure.DNS_REFUSED,
}

EarlyAnswer = Callable[[DNSObservation], None]


async def resolve(
    domain: str,
    resolver: Resolver,
    *,
    qtype: QType = "A",
    deadline: float,
    clock: Clock,
    ca_file: Path | None = None,
    late_window: float = DEFAULT_LATE_WINDOW,
    early: EarlyAnswer | None = None,
) -> DNSObservation:
    """Ask ``resolver`` for ``qtype`` records of ``domain`` before ``deadline`` (loop time).

    Over UDP, ``early`` (if given) is called with the first response's observation as soon as it
    arrives, while the late window is still open: the caller may go on with its addresses. The
    observation returned at the end also holds the late answers.
    """
    query = dns.message.make_query(domain, qtype)
    t0 = clock.now()
    response: dns.message.Message | None = None
    late: list[dns.message.Message] = []
    failure: Failure | None = None

    def first(message: dns.message.Message) -> None:
        if early is not None:
            early(_observation(domain, qtype, resolver, message, [], None, t0, clock.now()))

    try:
        if resolver.transport in ("system", "udp"):
            response = await _udp(query, resolver, deadline, late_window, late, first)
        else:
            async with asyncio.timeout_at(deadline):
                response = await _stream(query, resolver, ca_file)
    except NETWORK_ERRORS as exc:
        failure = classify_exception(exc)
    return _observation(domain, qtype, resolver, response, late, failure, t0, clock.now())


def _observation(
    domain: str,
    qtype: QType,
    resolver: Resolver,
    response: dns.message.Message | None,
    late: list[dns.message.Message],
    failure: Failure | None,
    t0: float,
    t: float,
) -> DNSObservation:
    answers: tuple[DNSAnswer, ...] = ()
    rcode: str | None = None
    if response is not None:
        rcode = dns.rcode.to_text(response.rcode())
        answers = _answers(response)
        failure = _rcode_failure(response, qtype, answers)
    return DNSObservation(
        domain=domain,
        qtype=qtype,
        resolver=resolver.label,
        transport=resolver.transport,
        control=resolver.control,
        rcode=rcode,
        answers=answers,
        late_answers=tuple(_addresses(message) for message in late),
        failure=failure,
        t0=t0,
        t=t,
    )


class _Datagrams(asyncio.DatagramProtocol):
    """Queues every datagram (and ICMP errors) that reaches a connected UDP socket."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


async def _udp(
    query: dns.message.Message,
    resolver: Resolver,
    deadline: float,
    late_window: float,
    late: list[dns.message.Message],
    first_arrived: Callable[[dns.message.Message], None],
) -> dns.message.Message:
    """Send ``query`` once over UDP; return the first response, appending later ones to ``late``.

    ``first_arrived`` hears of the first response before the late window opens.
    """
    loop = asyncio.get_running_loop()
    assert resolver.ip is not None  # parse_resolver always sets it for UDP
    transport, protocol = await loop.create_datagram_endpoint(
        _Datagrams, remote_addr=(resolver.ip, resolver.port)
    )
    try:
        async with asyncio.timeout_at(deadline):
            transport.sendto(query.to_wire())
            first = await _next_response(protocol, query)
        first_arrived(first)
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + late_window)):
                while True:
                    late.append(await _next_response(protocol, query))
        except (TimeoutError, OSError):
            pass  # the window closed, or an ICMP error after the answer: the answer stands
        return first
    finally:
        transport.close()


async def _next_response(protocol: _Datagrams, query: dns.message.Message) -> dns.message.Message:
    """The next datagram that parses as a response to ``query`` (others are ignored)."""
    while True:
        item = await protocol.queue.get()
        if isinstance(item, OSError):
            raise item
        try:
            message = dns.message.from_wire(item)
        except dns.exception.DNSException:
            continue
        if query.is_response(message):
            return message


async def _stream(
    query: dns.message.Message, resolver: Resolver, ca_file: Path | None
) -> dns.message.Message:
    """One query over TCP, DoT or DoH."""
    if resolver.transport == "doh":
        return await _doh(query, resolver, ca_file)
    assert resolver.ip is not None
    if resolver.transport == "tcp":
        return await dns.asyncquery.tcp(query, resolver.ip, port=resolver.port)
    return await dns.asyncquery.tls(
        query,
        resolver.ip,
        port=resolver.port,
        ssl_context=client_context(ca_file),
        server_hostname=resolver.server_name or resolver.ip,
    )


async def _doh(
    query: dns.message.Message, resolver: Resolver, ca_file: Path | None
) -> dns.message.Message:
    """RFC 8484 POST to the resolver's URL, connecting to its bootstrap address when it has one."""
    assert resolver.url is not None
    host = urllib.parse.urlsplit(resolver.url).hostname or ""
    pins = {host: resolver.ip} if resolver.ip else {}
    transport = PinnedTransport(pins, ssl_context=client_context(ca_file))
    headers = {"content-type": "application/dns-message", "accept": "application/dns-message"}
    async with httpx.AsyncClient(transport=transport) as client:
        reply = await client.post(resolver.url, content=query.to_wire(), headers=headers)
    reply.raise_for_status()
    message = dns.message.from_wire(reply.content)
    if not query.is_response(message):
        raise httpx.DecodingError("the DoH reply does not answer the query")
    return message


def _answers(response: dns.message.Message) -> tuple[DNSAnswer, ...]:
    """A, AAAA and CNAME records of the answer section, with TTLs."""
    found: list[DNSAnswer] = []
    for rrset in response.answer:
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rtype in ("A", "AAAA", "CNAME"):
            found.extend(
                DNSAnswer(rtype=rtype, value=rdata.to_text(), ttl=rrset.ttl) for rdata in rrset
            )
    return tuple(found)


def _addresses(response: dns.message.Message) -> tuple[str, ...]:
    """The A/AAAA values of a response."""
    return tuple(a.value for a in _answers(response) if a.rtype != "CNAME")


def _rcode_failure(
    response: dns.message.Message, qtype: QType, answers: tuple[DNSAnswer, ...]
) -> Failure | None:
    """The failure a response stands for: an error rcode, or NOERROR without ``qtype`` records."""
    rcode = response.rcode()
    if rcode in _RCODE_FAILURES:
        return _RCODE_FAILURES[rcode]
    if rcode != dns.rcode.NOERROR:
        return Failure.UNKNOWN
    if not any(a.rtype == qtype for a in answers):
        return Failure.DNS_NO_ANSWER
    return None
