"""An on-path DNS injector at an ISP: forged A answers that race the real one.

While the ``inject`` policy has rules, AF_PACKET sockets on the vantage-facing interfaces
(``to-v*``) see every incoming UDP/53 query, whatever address it is sent to. For a covered name the
injector at once sends, through a raw IP socket, a response from the queried address and port 53:
the right id and question, one A record (TTL 60), IP TTL 64. The query itself goes on, so the
client later receives the real answer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from censornet.policy import InjectRule, Policy, name_matches

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
FORGED_TTL = 60
FORGED_IP_TTL = 64
VANTAGE_PREFIX = "to-v"
POLL_INTERVAL = 0.25


def vantage_interfaces() -> list[str]:
    """The interfaces of this namespace that face vantage points (``to-v*``)."""
    return sorted(name for _, name in socket.if_nameindex() if name.startswith(VANTAGE_PREFIX))


def forge_response(packet: bytes, rules: tuple[InjectRule, ...]) -> bytes | None:
    """The forged IPv4/UDP answer to the DNS query in IPv4 ``packet``, or None if not covered."""
    query = _dns_query(packet)
    if query is None:
        return None
    payload, src, dst, sport = query
    try:
        message = dns.message.from_wire(payload)
    except dns.exception.DNSException:
        return None
    if message.flags & dns.flags.QR or len(message.question) != 1:
        return None
    question = message.question[0]
    if question.rdtype != dns.rdatatype.A or question.rdclass != dns.rdataclass.IN:
        return None
    qname = question.name.to_text(omit_final_dot=True)
    rule = next((r for r in rules if name_matches(qname, r.suffix)), None)
    if rule is None:
        return None
    response = dns.message.make_response(message)
    response.flags |= dns.flags.RA
    response.answer.append(
        dns.rrset.from_text(
            question.name, FORGED_TTL, dns.rdataclass.IN, dns.rdatatype.A, rule.answer
        )
    )
    return build_udp_packet(response.to_wire(), src=dst, dst=src, sport=53, dport=sport)


def build_udp_packet(payload: bytes, *, src: str, dst: str, sport: int, dport: int) -> bytes:
    """An IPv4 (TTL 64, no options) + UDP packet with valid checksums."""
    src_raw, dst_raw = socket.inet_aton(src), socket.inet_aton(dst)
    udp_length = 8 + len(payload)
    pseudo = src_raw + dst_raw + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_length)
    udp_header = struct.pack("!HHHH", sport, dport, udp_length, 0)
    checksum = _checksum(pseudo + udp_header + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_length, checksum) + payload
    ident = random.getrandbits(16)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0, 20 + len(udp), ident, 0, FORGED_IP_TTL, socket.IPPROTO_UDP, 0, src_raw, dst_raw,
    )  # fmt: skip
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


class DnsInjector:
    """Captures queries on ``interfaces()`` and injects forged answers while rules exist."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        *,
        interfaces: Callable[[], list[str]] = vantage_interfaces,
    ) -> None:
        self._policy = policy
        self._interfaces = interfaces
        self._captures: list[socket.socket] = []
        self._sender: socket.socket | None = None
        self._watch: asyncio.Task[None] | None = None
        self._rules: tuple[InjectRule, ...] = ()

    async def start(self) -> None:
        """Start following the policy (capture starts when the first rule appears)."""
        self._watch = asyncio.create_task(self._follow_policy())

    async def close(self) -> None:
        """Stop capturing."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._stop_capture()

    @property
    def capturing(self) -> bool:
        """Whether capture sockets are open."""
        return self._sender is not None

    async def _follow_policy(self) -> None:
        while True:
            self._rules = self._policy().inject
            if self._rules and not self.capturing:
                self._start_capture()
            elif not self._rules and self.capturing:
                self._stop_capture()
            await asyncio.sleep(POLL_INTERVAL)

    def _start_capture(self) -> None:
        loop = asyncio.get_running_loop()
        self._sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        for name in self._interfaces():
            capture = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            capture.bind((name, ETH_P_IP))
            capture.setblocking(False)
            loop.add_reader(capture.fileno(), self._on_readable, capture)
            self._captures.append(capture)
        log.info("dns injector capturing on %s", ", ".join(self._interfaces()) or "(none)")

    def _stop_capture(self) -> None:
        loop = asyncio.get_event_loop()
        for capture in self._captures:
            loop.remove_reader(capture.fileno())
            capture.close()
        self._captures = []
        if self._sender is not None:
            self._sender.close()
            self._sender = None
            log.info("dns injector stopped")

    def _drop_capture(self, capture: socket.socket) -> None:
        asyncio.get_event_loop().remove_reader(capture.fileno())
        capture.close()
        self._captures.remove(capture)

    def _on_readable(self, capture: socket.socket) -> None:
        while True:
            try:
                packet, address = capture.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("capture on %s failed, closing it: %s", capture, exc)
                self._drop_capture(capture)
                return
            if address[2] == PACKET_OUTGOING:
                continue
            forged = forge_response(packet, self._rules)
            if forged is None or self._sender is None:
                continue
            destination = socket.inet_ntoa(forged[16:20])
            try:
                self._sender.sendto(forged, (destination, 0))
            except OSError as exc:
                log.warning("injection to %s failed: %s", destination, exc)
            else:
                log.info("injected a forged answer to %s", destination)


def _dns_query(packet: bytes) -> tuple[bytes, str, str, int] | None:
    """(DNS payload, source, destination, source port) of an IPv4 UDP/53 packet, else None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP:
        return None
    if int.from_bytes(packet[6:8], "big") & 0x3FFF:
        return None  # a fragment
    header_length = (packet[0] & 0x0F) * 4
    total = min(int.from_bytes(packet[2:4], "big"), len(packet))
    udp = packet[header_length:total]
    if len(udp) < 8 or int.from_bytes(udp[2:4], "big") != 53:
        return None
    sport = int.from_bytes(udp[0:2], "big")
    return bytes(udp[8:]), socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20]), sport


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
