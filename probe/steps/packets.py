"""Injected-reset evidence: is the RST after a ClientHello the server's, or a middlebox's?

``reset_evidence`` captures the packets of one TCP connection to ``ip:port`` that sends a
ClientHello with ``sni``, and ``judge_reset`` compares every RST that came back with the server's
SYN-ACK, as ICLab does: a device on the path forges the RST with its own IP TTL (it sits at a
different distance and starts from its own initial TTL) and its own IP ID, unrelated to the
counter of the server's packets. A TTL that differs by more than ``TTL_TOLERANCE`` hops, or an
IP ID far from the server's counter, makes the RST ``injected``. Linux servers send the SYN-ACK
with IP ID 0, so the IP ID is compared only when the server sent other packets with an ID.

Optional and privileged: without raw-socket capability (``probe.steps.capture``) the result says
``available=False`` and nothing is sent. Network failures are data, as in every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from probe.model.failures import Failure
from probe.steps._errors import NETWORK_ERRORS, classify_exception
from probe.steps.capture import Capture, Captured, raw_sockets_available
from probe.steps.headers import FIN, Packet
from probe.steps.triggers import client_hello

TTL_TOLERANCE = 1  # hops a genuine RST's TTL may differ from the SYN-ACK's (route change)
IP_ID_WINDOW = 2048  # how far past the server's last IP ID its own RST may be
SETTLE = 0.2  # seconds to keep capturing after the first reaction (racing packets)
NOT_AVAILABLE = "packet evidence not available: capturing needs root or CAP_NET_RAW"

AllowCheck = Callable[[str, str], bool]
"""(host, ip) -> whether the probe may send packet probes there (a configured platform endpoint)."""


class PacketEvidence(BaseModel):
    """What the packets of one ClientHello attempt show about the RSTs that came back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
) -> PacketEvidence:
    """Send a ClientHello with ``sni`` to ``ip:port`` and judge the RSTs that answer it."""
    check_allowed(allow, sni, ip)
    if not raw_sockets_available():
        return PacketEvidence(available=False, ip=ip, port=port, sni=sni, description=NOT_AVAILABLE)
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
    mismatched = [p for p in resets if abs(p.ttl - synack.ttl) > tolerance]
    unrelated = _ip_id_unrelated(resets, others[-1].ip_id) if others else None
    injected = bool(mismatched) or bool(unrelated)
    first = mismatched[0] if mismatched else resets[0]
    facts = (
        f"RST from {where} arrived with IP TTL {first.ttl} and IP ID {first.ip_id}, "
        f"the server's SYN-ACK with IP TTL {synack.ttl} and IP ID {synack.ip_id}"
    )
    reasons = []
    if mismatched:
        reasons.append(f"the TTLs differ by {abs(first.ttl - synack.ttl)} hops")
    if unrelated:
        reasons.append(f"the IP ID is unrelated to the server's ({others[-1].ip_id})")
    if injected:
        text = f"{facts}: {' and '.join(reasons)}, so a device on the path forged it"
    else:
        text = f"{facts}: consistent with the server (or a device as far away) sending it"
    if len(resets) > 1:
        text += f" ({len(resets)} RSTs, IP TTLs {', '.join(str(t) for t in found.rst_ttls)})"
    return found.model_copy(
        update={"description": text, "injected": injected, "ip_id_unrelated": unrelated}
    )


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
