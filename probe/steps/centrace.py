"""Locating the censor as CenTrace does: the trigger sent with a growing IP TTL (IPv6 hop limit).

For TTL = 1, 2, ... ``locate_censor`` opens a TCP connection normally (full TTL, so the handshake
reaches the server), lowers the socket's IP TTL and sends the trigger (a ClientHello with the
SNI, or an HTTP request with the Host). What comes back tells how far the trigger went: an ICMP
time-exceeded quoting our segment names the router where it expired; a RST means a device at or
before that hop reacted to it (``reset``); an answer from the server means it went through; and
silence, where the same TTL with a benign control host still draws an ICMP or an answer, means a
device dropped it (``drop``). ``infer_censor`` turns the hop probes into the censor's hop count
and, when ICMP reveals them, the router at that hop and the one before it.

An on-path injector tapping the link into router N answers at TTL N together with that router's
ICMP. An in-path device that acts on forwarded packets after router N has checked the TTL first
answers at TTL N + 1 with no ICMP, right after router N.

Probes are paced (``rate`` per second, at most ``MAX_RATE``), stop at the first block reaction
or server answer, and go only where ``allow`` says the probe may measure. Privileged: without
raw-socket capability the result says ``available=False`` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from probe.model.base import FrozenModel
from probe.model.failures import Failure
from probe.net.capture import Capture, Captured, raw_sockets_available
from probe.net.errors import NETWORK_ERRORS, classify_exception
from probe.net.headers import FIN, ICMP_TIME_EXCEEDED, ICMP_UNREACHABLE, Packet
from probe.net.triggers import DEFAULT_PORTS, Trigger, payload
from probe.steps.packets import NOT_AVAILABLE, AllowCheck, check_allowed

MAX_RATE = 10.0  # probes per second, never more
MAX_TTL = 12
WAIT = 0.5  # seconds to wait for a reaction to one probe
ICMP_GRACE = 0.05  # after an ICMP, how long to wait for a RST from the same hop (at least)
MAX_SILENT = 3  # consecutive silent hops before giving up

Reaction = Literal["reset", "server", "icmp", "silence", "failed"]
Outcome = Literal["reset", "drop", "none", "unknown"]


class HopProbe(FrozenModel):
    """What one trigger sent with IP TTL ``ttl`` drew."""

    ttl: int = Field(ge=1, le=255)
    host: str
    control: bool = False  # sent with the benign control host
    router: str | None = None  # source of an ICMP time-exceeded/unreachable quoting the trigger
    icmp_type: int | None = None
    reset: bool = False
    reset_ttl: int | None = None  # IP TTL of the RST as it arrived
    server: bool = False  # the server acknowledged or answered the trigger
    failure: Failure | None = None  # the full-TTL connect failed
    packets: int = 0
    elapsed: float = 0.0  # seconds from the trigger to its reaction (or to giving up)

    @property
    def reaction(self) -> Reaction:
        """The strongest thing seen: a RST, the server, an ICMP, or nothing."""
        if self.failure is not None:
            return "failed"
        if self.reset:
            return "reset"
        if self.server:
            return "server"
        return "icmp" if self.router else "silence"


class CensorLocation(FrozenModel):
    """Where on the path to ``ip`` the trigger for ``host`` is blocked."""

    available: bool
    ip: str
    port: int
    host: str
    trigger: Trigger
    outcome: Outcome = "unknown"  # reset/drop: located; none: the trigger reached the server
    hop: int | None = None  # the first TTL at which the block reaction shows
    router: str | None = None  # the router that also answered at that hop (an on-path tap)
    previous_router: str | None = None  # the last router before the censor
    hops: tuple[HopProbe, ...] = ()
    packets: int = 0
    seconds: float = 0.0
    description: str


def infer_censor(hops: Sequence[HopProbe]) -> tuple[Outcome, int | None, str | None, str | None]:
    """(outcome, hop, router at the hop, router before it) from the hop probes (pure)."""
    tests = sorted((h for h in hops if not h.control), key=lambda h: h.ttl)
    controls = {h.ttl: h for h in hops if h.control}
    routers = {h.ttl: h.router for h in (*tests, *controls.values()) if h.router}

    def before(ttl: int) -> str | None:
        earlier = [t for t in routers if t < ttl]
        return routers[max(earlier)] if earlier else None

    for probe in tests:
        if probe.reaction == "failed":
            return "unknown", None, None, None
        if probe.reset:
            return "reset", probe.ttl, probe.router, before(probe.ttl)
        if probe.server:
            return "none", None, None, before(probe.ttl)
        control = controls.get(probe.ttl)
        if probe.reaction == "silence" and control and control.reaction in ("icmp", "server"):
            return "drop", probe.ttl, None, before(probe.ttl)
    return "unknown", None, None, None


def describe(location: CensorLocation) -> str:
    """One line for a located (or not) censor."""
    what = f"{location.trigger} trigger for {location.host} to {location.ip}:{location.port}"
    after = f" after router {location.previous_router}" if location.previous_router else ""
    if location.outcome == "reset":
        at = f" alongside router {location.router}" if location.router else after
        return f"{what}: reset by a device at hop {location.hop}{at}"
    if location.outcome == "drop":
        return f"{what}: dropped at hop {location.hop}{after} (the control host goes further)"
    if location.outcome == "none":
        last = max(h.ttl for h in location.hops if not h.control)
        return f"{what}: reached the server at hop {last} with no block on the way"
    return f"{what}: censor not located within {len(location.hops)} probes"


async def locate_censor(
    ip: str,
    host: str,
    *,
    allow: AllowCheck,
    deadline: float,
    trigger: Trigger = "tls",
    port: int | None = None,
    control_host: str | None = None,
    max_ttl: int = MAX_TTL,
    rate: float = MAX_RATE,
    wait: float = WAIT,
) -> CensorLocation:
    """Send ``host``'s trigger to ``ip`` with IP TTL 1..``max_ttl`` and locate the block."""
    check_allowed(allow, host, ip)
    if control_host is not None:
        check_allowed(allow, control_host, ip)
    port = port or DEFAULT_PORTS[trigger]
    base = CensorLocation(
        available=False, ip=ip, port=port, host=host, trigger=trigger, description=NOT_AVAILABLE
    )
    if not raw_sockets_available():
        return base
    loop = asyncio.get_running_loop()
    start = loop.time()
    gap = 1.0 / min(rate, MAX_RATE)
    next_at = start
    hops: list[HopProbe] = []
    silent = 0

    async def send(ttl: int, name: str, control: bool) -> HopProbe:
        nonlocal next_at
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at = max(loop.time(), next_at) + gap
        probe = await _probe(ip, port, name, trigger, ttl, control, wait, deadline)
        hops.append(probe)
        return probe

    for ttl in range(1, max_ttl + 1):
        if loop.time() >= deadline:
            break
        probe = await send(ttl, host, False)
        if probe.reaction in ("reset", "server", "failed"):
            break
        if probe.reaction != "silence":
            silent = 0
            continue
        if control_host is not None:
            control = await send(ttl, control_host, True)
            if control.reaction in ("icmp", "server"):
                break  # the control goes on where the trigger dies: a drop
        silent += 1
        if silent >= MAX_SILENT:
            break
    outcome, hop, router, previous = infer_censor(hops)
    located = base.model_copy(
        update={
            "available": True,
            "outcome": outcome,
            "hop": hop,
            "router": router,
            "previous_router": previous,
            "hops": tuple(hops),
            "packets": sum(h.packets for h in hops),
            "seconds": round(loop.time() - start, 4),
        }
    )
    return located.model_copy(update={"description": describe(located)})


async def _probe(
    ip: str,
    port: int,
    host: str,
    trigger: Trigger,
    ttl: int,
    control: bool,
    wait: float,
    deadline: float,
) -> HopProbe:
    """One connection: full-TTL handshake, then the trigger with IP TTL ``ttl``."""
    loop = asyncio.get_running_loop()
    data = payload(trigger, host)
    async with Capture(ip, icmp=True) as capture:
        try:
            async with asyncio.timeout_at(deadline):
                _, writer = await asyncio.open_connection(ip, port)
        except NETWORK_ERRORS as exc:
            return HopProbe(ttl=ttl, host=host, control=control, failure=classify_exception(exc))
        sock = writer.get_extra_info("socket")
        local_port: int = writer.get_extra_info("sockname")[1]
        sent = loop.time()
        try:
            _set_ttl(sock, ttl)
            writer.write(data)
            end = min(deadline, sent + wait)
            await capture.wait_for(
                lambda seen: (
                    _decisive(seen, ip, port, local_port, sent)
                    or _icmp(seen, ip, port, local_port) is not None
                ),
                end,
            )
            icmp = _icmp(capture.packets, ip, port, local_port)
            if icmp is not None and not _decisive(capture.packets, ip, port, local_port, sent):
                grace = max(ICMP_GRACE, icmp.at - sent)
                await capture.wait_for(
                    lambda seen: _decisive(seen, ip, port, local_port, sent),
                    min(end, icmp.at + grace),
                )
        finally:
            _abort(sock)
            writer.transport.abort()
    return summarise(
        capture.packets,
        ip=ip,
        port=port,
        local_port=local_port,
        host=host,
        ttl=ttl,
        sent=sent,
        control=control,
    )


def summarise(
    seen: Sequence[Captured],
    *,
    ip: str,
    port: int,
    local_port: int,
    host: str,
    ttl: int,
    sent: float,
    control: bool = False,
) -> HopProbe:
    """The reaction the captured packets of one probe (trigger sent at ``sent``) show."""
    icmp = _icmp(seen, ip, port, local_port)
    resets = [c for c in _incoming(seen, ip, port, local_port) if c.packet.is_rst]
    answers = _answers(seen, ip, port, local_port, sent)
    reactions = [c.at for c in (*resets, *answers)] + ([icmp.at] if icmp else [])
    ours = [
        c
        for c in seen
        if local_port in (c.packet.sport, c.packet.dport)
        or (c.packet.quoted is not None and c.packet.quoted.sport == local_port)
    ]
    return HopProbe(
        ttl=ttl,
        host=host,
        control=control,
        router=icmp.packet.src if icmp else None,
        icmp_type=icmp.packet.icmp_type if icmp else None,
        reset=bool(resets),
        reset_ttl=resets[0].packet.ttl if resets else None,
        server=bool(answers),
        packets=len(ours),
        elapsed=round((min(reactions) if reactions else seen[-1].at if seen else sent) - sent, 6),
    )


def _incoming(seen: Sequence[Captured], ip: str, port: int, local_port: int) -> list[Captured]:
    return [
        c
        for c in seen
        if not c.outgoing
        and (c.packet.src, c.packet.sport, c.packet.dport) == (ip, port, local_port)
    ]


def _icmp(seen: Sequence[Captured], ip: str, port: int, local_port: int) -> Captured | None:
    """The first ICMP time-exceeded/unreachable that quotes one of our segments."""
    for c in seen:
        quoted: Packet | None = c.packet.quoted
        if (
            not c.outgoing
            and c.packet.icmp_type in (ICMP_TIME_EXCEEDED, ICMP_UNREACHABLE)
            and quoted is not None
            and (quoted.dst, quoted.sport, quoted.dport) == (ip, local_port, port)
        ):
            return c
    return None


def _answers(
    seen: Sequence[Captured], ip: str, port: int, local_port: int, sent: float
) -> list[Captured]:
    """Server packets that answer or acknowledge the trigger: data, a FIN, or an ACK of bytes.

    An ACK acknowledges bytes when its number is past the SYN-ACK's (our ISN + 1).
    """
    incoming = _incoming(seen, ip, port, local_port)
    synack = next((c.packet for c in incoming if c.packet.is_synack), None)
    return [
        c
        for c in incoming
        if c.at >= sent
        and not c.packet.is_rst
        and not c.packet.is_synack
        and bool(
            c.packet.payload
            or c.packet.flags & FIN
            or (synack is not None and c.packet.ack != synack.ack)
        )
    ]


def _decisive(seen: Sequence[Captured], ip: str, port: int, local_port: int, sent: float) -> bool:
    """A RST or a server answer: nothing more to wait for."""
    if any(c.packet.is_rst for c in _incoming(seen, ip, port, local_port)):
        return True
    return bool(_answers(seen, ip, port, local_port, sent))


def _abort(sock: socket.socket) -> None:
    """Full TTL again and a RST on close, so neither side keeps retransmitting a probe."""
    try:
        _set_ttl(sock, -1)  # the system default
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # already closed by a reset


def _set_ttl(sock: socket.socket, ttl: int) -> None:
    """The socket's IP TTL, or its IPv6 hop limit (-1: the system default)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
