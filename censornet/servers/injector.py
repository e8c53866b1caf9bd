"""An on-path DNS injector at an ISP: forged A answers that race the real one.

While the ``inject`` policy has rules, AF_PACKET sockets on the vantage-facing interfaces
(``to-v*``) see every incoming UDP/53 query, whatever address it is sent to. For a covered name the
injector at once sends, through a raw IP socket, a response from the queried address and port 53:
the right id and question, one A record (TTL 60), IP TTL 64. The query itself goes on, so the
client later receives the real answer too.
"""

from __future__ import annotations

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
from censornet.servers.onpath import POLL_INTERVAL, OnPathInjector, vantage_interfaces

__all__ = ["POLL_INTERVAL", "DnsInjector", "forge_response", "vantage_interfaces"]

log = logging.getLogger(__name__)

FORGED_TTL = 60
FORGED_IP_TTL = 64


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


class DnsInjector(OnPathInjector):
    """Captures queries on ``interfaces()`` and injects forged answers while rules exist."""

    label = "dns injector"

    def __init__(
        self,
        policy: Callable[[], Policy],
        *,
        interfaces: Callable[[], list[str]] = vantage_interfaces,
    ) -> None:
        super().__init__(interfaces=interfaces)
        self._policy = policy
        self._rules: tuple[InjectRule, ...] = ()

    def refresh(self) -> bool:
        """Re-read the policy's injection rules."""
        self._rules = self._policy().inject
        return bool(self._rules)

    def forge(self, packet: bytes) -> bytes | None:
        """A forged answer to a matching DNS query."""
        return forge_response(packet, self._rules)


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
