"""Injected-reset evidence: is the RST after a ClientHello the server's, or a middlebox's?

``reset_evidence`` captures the packets of TCP connections to ``ip:port`` that send a ClientHello
with ``sni`` (``RESET_TRIES`` of them, one after the other), and ``judge_reset`` compares every
RST that came back with the server's SYN-ACK, as ICLab does: a device on the path forges the RST
with its own IP TTL (it sits at a different distance and starts from its own initial TTL) and its
own IP ID, unrelated to the counter of the server's packets.

Distances are hops: a packet's hop distance is the nearest common initial TTL at or above its IP
TTL (64, 128 or 255) minus that TTL, so the server's SYN-ACK at 63 came one hop, and an RST at 64
from the first router came zero hops. An RST from fewer hops than the SYN-ACK was sent by something
between the probe and the server; when it is closer by one hop only, a route change could explain
one connection, so it counts when every try that drew an RST shows it (``combine_tries``). A TTL
that differs by more than ``TTL_TOLERANCE`` hops either way, or an IP ID far from the server's
counter, makes the RST ``injected`` on its own. Linux servers send the SYN-ACK with IP ID 0, so the
IP ID is compared only when the server sent other packets with an ID.

Optional and privileged: without raw-socket capability (``probe.net.capture``) the result says
``available=False`` and nothing is sent. Network failures are data, as in every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from probe.model.base import FrozenModel
from probe.model.failures import Failure
from probe.net.capture import Capture, Captured, raw_sockets_available
from probe.net.errors import NETWORK_ERRORS, classify_exception
from probe.net.headers import FIN, Packet
from probe.net.triggers import client_hello

TTL_TOLERANCE = 1  # hops a genuine RST's TTL may differ from the SYN-ACK's (route change)
COMMON_INITIAL_TTLS = (64, 128, 255)  # Linux/BSD/macOS, Windows, network gear
RESET_TRIES = 2  # connections per reset_evidence: a one-hop difference must repeat
IP_ID_WINDOW = 2048  # how far past the server's last IP ID its own RST may be
SETTLE = 0.2  # seconds to keep capturing after the first reaction (racing packets)
NOT_AVAILABLE = "packet evidence not available: capturing needs root or CAP_NET_RAW"

AllowCheck = Callable[[str, str], bool]
"""(host, ip) -> whether the probe may send packet probes there (a configured platform endpoint)."""


class PacketEvidence(FrozenModel):
    """What the packets of one ClientHello attempt show about the RSTs that came back."""

    available: bool
    ip: str
    port: int
    sni: str
    failure: Failure | None = None  # of the connection attempt itself
    synack_ttl: int | None = None
    synack_ip_id: int | None = None
    rst_ttl: int | None = None  # of the first RST
    rst_ip_id: int | None = None
    rst_ttls: tuple[int, ...] = ()  # of every RST, in arrival order
    synack_hops: int | None = None  # hop distance of the SYN-ACK (see ``hop_distance``)
    rst_hops: int | None = None  # hop distance of the nearest RST
    hops_closer: int | None = None  # how many hops nearer than the SYN-ACK that RST came from
    tries: int = 1  # connections judged (``combine_tries``)
    ip_id_unrelated: bool | None = None  # None when the server gave no IP ID to compare
    injected: bool = False
    packets: int = 0  # packets of the connection captured, both directions
    seconds: float = 0.0
    description: str


def check_allowed(allow: AllowCheck | None, host: str, ip: str) -> None:
    """Raise ValueError when ``allow`` refuses ``host`` at ``ip`` (a caller's error)."""
    if allow is not None and not allow(host, ip):
        raise ValueError(f"{host} at {ip} is not a configured endpoint: no packet probes there")


async def reset_evidence(
    ip: str,
    sni: str,
    *,
    port: int = 443,
    deadline: float,
    settle: float = SETTLE,
    tolerance: int = TTL_TOLERANCE,
    allow: AllowCheck | None = None,
    tries: int = RESET_TRIES,
) -> PacketEvidence:
    """Send a ClientHello with ``sni`` to ``ip:port`` on up to ``tries`` connections (while RSTs
    come back and time remains) and judge the RSTs that answer it."""
    check_allowed(allow, sni, ip)
    if not raw_sockets_available():
        return PacketEvidence(available=False, ip=ip, port=port, sni=sni, description=NOT_AVAILABLE)
    found = []
    for _ in range(max(1, tries)):
        one = await _one_try(
            ip, sni, port=port, deadline=deadline, settle=settle, tolerance=tolerance
        )
        found.append(one)
        if one.rst_ttl is None or asyncio.get_running_loop().time() >= deadline:
            break  # no RST to compare again, or no time left
    return combine_tries(found)


async def _one_try(
    ip: str, sni: str, *, port: int, deadline: float, settle: float, tolerance: int
) -> PacketEvidence:
    """One connection: send the ClientHello, capture what comes back, judge it."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    local_port: int | None = None
    failure: Failure | None = None
    async with Capture(ip) as capture:
        try:
            async with asyncio.timeout_at(deadline):
                _, writer = await asyncio.open_connection(ip, port)
            local_port = writer.get_extra_info("sockname")[1]
            try:
                writer.write(client_hello(sni))
                await capture.wait_for(lambda seen: _reacted(seen, ip, port, local_port), deadline)
                await capture.wait_for(lambda _: False, min(deadline, loop.time() + settle))
            finally:
                writer.close()
        except NETWORK_ERRORS as exc:
            failure = classify_exception(exc)
    packets = [c.packet for c in capture.packets if _ours(c.packet, ip, port, local_port)]
    return judge_reset(
        packets,
        ip=ip,
        port=port,
        sni=sni,
        failure=failure,
        tolerance=tolerance,
        seconds=loop.time() - start,
    )


def initial_ttl(ttl: int) -> int:
    """The nearest common initial IP TTL at or above ``ttl`` (64, 128 or 255)."""
    if not 0 <= ttl <= 255:
        raise ValueError(f"an IP TTL is 0..255, not {ttl}")
    return next(start for start in COMMON_INITIAL_TTLS if start >= ttl)


def hop_distance(ttl: int) -> int:
    """Hops a packet that arrived with IP TTL ``ttl`` travelled (routers that decremented it)."""
    return initial_ttl(ttl) - ttl


def _hops(n: int) -> str:
    return f"{n} hop{'' if n == 1 else 's'}"


def judge_reset(
    packets: Sequence[Packet],
    *,
    ip: str,
    port: int,
    sni: str,
    failure: Failure | None = None,
    tolerance: int = TTL_TOLERANCE,
    seconds: float = 0.0,
) -> PacketEvidence:
    """Compare the RSTs from ``ip:port`` among ``packets`` (one connection) with its SYN-ACK."""
    incoming = [p for p in packets if p.src == ip and p.sport == port]
    synack = next((p for p in incoming if p.is_synack), None)
    resets = [p for p in incoming if p.is_rst]
    others = [p for p in incoming if not p.is_rst and p.ip_id != 0]
    found = PacketEvidence(
        available=True,
        ip=ip,
        port=port,
        sni=sni,
        failure=failure,
        synack_ttl=synack.ttl if synack else None,
        synack_ip_id=synack.ip_id if synack else None,
        rst_ttl=resets[0].ttl if resets else None,
        rst_ip_id=resets[0].ip_id if resets else None,
        rst_ttls=tuple(p.ttl for p in resets),
        packets=len(packets),
        seconds=round(seconds, 4),
        description="",
    )
    where = f"{ip}:{port} (SNI {sni})"
    if not resets:
        answered = sum(len(p.payload) for p in incoming)
        if answered or any(p.flags & FIN for p in incoming):
            text = f"no RST from {where}: the server answered the ClientHello ({answered} bytes)"
        else:
            text = f"no RST and no answer from {where}"
        return found.model_copy(update={"description": text})
    if synack is None:
        text = f"RST from {where} before any SYN-ACK: nothing to compare it with"
        return found.model_copy(update={"description": text})
    server_hops = hop_distance(synack.ttl)
    nearest = min(resets, key=lambda p: hop_distance(p.ttl))
    closer = server_hops - hop_distance(nearest.ttl)
    server_start = initial_ttl(synack.ttl)
    mismatched = [
        p
        for p in resets
        if abs(hop_distance(p.ttl) - server_hops) > tolerance or initial_ttl(p.ttl) != server_start
    ]
    unrelated = _ip_id_unrelated(resets, others[-1].ip_id) if others else None
    injected = bool(mismatched) or bool(unrelated)
    first = nearest if closer > 0 else (mismatched[0] if mismatched else resets[0])
    facts = (
        f"RST from {where} arrived with IP TTL {first.ttl} ({_hops(hop_distance(first.ttl))} "
        f"from {initial_ttl(first.ttl)}) and IP ID {first.ip_id}, the server's SYN-ACK with IP "
        f"TTL {synack.ttl} ({_hops(server_hops)} from {initial_ttl(synack.ttl)}) and IP ID "
        f"{synack.ip_id}"
    )
    reasons = []
    if closer > 0:
        reasons.append(f"the RST came from {_hops(closer)} closer than the server")
    if initial_ttl(first.ttl) != server_start:
        reasons.append(
            f"it started from IP TTL {initial_ttl(first.ttl)}, the server from {server_start}"
        )
    elif mismatched and closer <= 0:
        reasons.append(f"the TTLs differ by {abs(first.ttl - synack.ttl)} hops")
    if unrelated:
        reasons.append(f"the IP ID is unrelated to the server's ({others[-1].ip_id})")
    if injected:
        text = f"{facts}: {' and '.join(reasons)}, so a device on the path forged it"
    elif closer > 0:
        text = (
            f"{facts}: {reasons[0]}, which a device on the path would show; one connection "
            "alone could be a route change"
        )
    else:
        text = f"{facts}: consistent with the server (or a device as far away) sending it"
    if len(resets) > 1:
        text += f" ({len(resets)} RSTs, IP TTLs {', '.join(str(t) for t in found.rst_ttls)})"
    return found.model_copy(
        update={
            "description": text,
            "injected": injected,
            "ip_id_unrelated": unrelated,
            "synack_hops": server_hops,
            "rst_hops": hop_distance(nearest.ttl),
            "hops_closer": closer,
        }
    )


def combine_tries(tries: Sequence[PacketEvidence]) -> PacketEvidence:
    """One judgement over several connections' evidence (at least one).

    A try judged injected on its own (a distance off by more than the tolerance, another initial
    TTL, an unrelated IP ID) decides. Otherwise an RST nearer than the SYN-ACK, even by one hop,
    is a device on the path when every try that drew an RST shows it, and at least two did.
    """
    if not tries:
        raise ValueError("no tries to combine")
    count = len(tries)
    compared = [t for t in tries if t.hops_closer is not None]
    decided = next((t for t in tries if t.injected), None)
    if decided is not None:
        return decided.model_copy(update={"tries": count, "rst_ttls": _all_ttls(tries)})
    if not compared:
        return tries[0].model_copy(update={"tries": count})
    closer = [t for t in compared if (t.hops_closer or 0) > 0]
    first = compared[0]
    if len(compared) >= 2 and len(closer) == len(compared):
        hops = min(t.hops_closer or 0 for t in closer)
        where = f"{first.ip}:{first.port} (SNI {first.sni})"
        ttls = ", ".join(str(t) for t in _all_ttls(compared))
        text = (
            f"RSTs from {where} arrived from {_hops(hops)} closer than the server on "
            f"{len(closer)} of {count} tries (RST IP TTLs {ttls}, {_hops(first.rst_hops or 0)} "
            f"from {initial_ttl(first.rst_ttl or 0)}; the server's SYN-ACK at IP TTL "
            f"{first.synack_ttl}, {_hops(first.synack_hops or 0)}): a device on the path sent "
            f"them, {_hops(hops)} before the server"
        )
        return first.model_copy(
            update={
                "injected": True,
                "description": text,
                "tries": count,
                "hops_closer": hops,
                "rst_ttls": _all_ttls(compared),
            }
        )
    if closer:
        note = f" (closer on {len(closer)} of {len(compared)} tries with an RST: not consistent)"
        chosen = closer[0]
        return chosen.model_copy(update={"description": chosen.description + note, "tries": count})
    return first.model_copy(update={"tries": count, "rst_ttls": _all_ttls(compared)})


def _all_ttls(tries: Sequence[PacketEvidence]) -> tuple[int, ...]:
    return tuple(ttl for t in tries for ttl in t.rst_ttls)


def _ip_id_unrelated(resets: Sequence[Packet], server_ip_id: int) -> bool:
    """Whether some RST's IP ID is far (either way) from the server's last IP ID."""
    return any(
        min((p.ip_id - server_ip_id) % 65536, (server_ip_id - p.ip_id) % 65536) > IP_ID_WINDOW
        for p in resets
    )


def _ours(packet: Packet, ip: str, port: int, local_port: int | None) -> bool:
    """A packet of our connection (any local port when the connection never opened)."""
    if packet.src == ip and packet.sport == port:
        return local_port is None or packet.dport == local_port
    if packet.dst == ip and packet.dport == port:
        return local_port is None or packet.sport == local_port
    return False


def _reacted(seen: list[Captured], ip: str, port: int, local_port: int | None) -> bool:
    """The server side of our connection answered the ClientHello: an RST, a FIN, or data."""
    return any(
        c.packet.src == ip
        and _ours(c.packet, ip, port, local_port)
        and (c.packet.is_rst or c.packet.flags & FIN or c.packet.payload)
        for c in seen
    )
