"""IP packets as a capture sees them: the header fields that packet evidence compares.

``decode`` reads one IPv4 or IPv6 packet, starting at the IP header as an AF_PACKET ``SOCK_DGRAM``
socket delivers it, into a ``Packet``: addresses, IP TTL (IPv6: the hop limit), IP ID and DF flag
(IPv6 has neither: 0 and True), and the TCP, UDP or ICMP fields that matter. An ICMP error carries
the ``quoted`` packet that caused it (its IP header and the first 8 bytes of its transport header,
RFC 792; ICMPv6 quotes as much as fits, RFC 4443), decoded the same way. ICMPv6 destination
unreachable and time exceeded get the ICMPv4 type numbers (``ICMP_UNREACHABLE``,
``ICMP_TIME_EXCEEDED``) so that evidence reads them alike; ``proto`` stays ICMPv6. This is
``struct`` rather than scapy on purpose: decoding runs once per captured packet, and importing
scapy's IP layers alone takes about 0.35 s.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED = 3, 11
ICMP_PROTOCOLS = frozenset({socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6})
_IP = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_IP6_EXTENSIONS = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IP6_FRAGMENT = 44
# ICMPv6 error types as their ICMPv4 counterparts: destination unreachable, time exceeded.
_ICMP6_ERRORS = {1: ICMP_UNREACHABLE, 3: ICMP_TIME_EXCEEDED}


@dataclass(frozen=True)
class Packet:
    """The fields of one IP packet that evidence needs (transport fields per protocol)."""

    src: str
    dst: str
    proto: int
    ttl: int
    ip_id: int
    df: bool
    sport: int | None = None  # TCP/UDP
    dport: int | None = None
    flags: int = 0  # TCP flags
    seq: int = 0
    ack: int = 0
    payload: bytes = b""  # TCP/UDP payload (empty in a quoted packet)
    icmp_type: int | None = None
    icmp_code: int | None = None
    quoted: Packet | None = None  # the offending packet an ICMP error quotes

    @property
    def is_rst(self) -> bool:
        """A TCP segment with RST set."""
        return self.proto == socket.IPPROTO_TCP and bool(self.flags & RST)

    @property
    def is_synack(self) -> bool:
        """A TCP segment with SYN and ACK set (a server accepting a connection)."""
        return self.proto == socket.IPPROTO_TCP and self.flags & (SYN | ACK) == SYN | ACK

    def flow(self) -> tuple[str, int | None, str, int | None]:
        """(source, source port, destination, destination port)."""
        return (self.src, self.sport, self.dst, self.dport)


def decode(raw: bytes, *, quoted: bool = False) -> Packet | None:
    """The ``Packet`` in ``raw`` (None when it is not a whole, unfragmented IP packet).

    With ``quoted``, ``raw`` is the part of a packet an ICMP error quotes: the transport header
    may be cut after 8 bytes, and the IP total length may exceed what is there.
    """
    if raw and raw[0] >> 4 == 6:
        return _decode6(raw, quoted)
    if len(raw) < _IP.size or raw[0] >> 4 != 4:
        return None
    version_ihl, _, total, ip_id, frag, ttl, proto, _, src, dst = _IP.unpack_from(raw)
    header = (version_ihl & 0x0F) * 4
    if header < _IP.size or frag & 0x1FFF:
        return None  # bad header length, or a fragment that is not the first
    end = len(raw) if quoted else min(total, len(raw))
    base = Packet(
        src=socket.inet_ntoa(src),
        dst=socket.inet_ntoa(dst),
        proto=proto,
        ttl=ttl,
        ip_id=ip_id,
        df=bool(frag & 0x4000),
    )
    return _transport(base, raw[header:end], quoted)


def _decode6(raw: bytes, quoted: bool) -> Packet | None:
    """An IPv6 packet: the fixed header, extension headers skipped (None for a fragment)."""
    if len(raw) < _IP6.size:
        return None
    _, length, proto, hop_limit, src, dst = _IP6.unpack_from(raw)
    offset = _IP6.size
    end = len(raw) if quoted else min(_IP6.size + length, len(raw))
    while proto in _IP6_EXTENSIONS:
        if offset + 8 > end:
            return None
        proto, size = raw[offset], (raw[offset + 1] + 1) * 8
        offset += size
    if proto == _IP6_FRAGMENT:
        return None
    base = Packet(
        src=socket.inet_ntop(socket.AF_INET6, src),
        dst=socket.inet_ntop(socket.AF_INET6, dst),
        proto=proto,
        ttl=hop_limit,
        ip_id=0,
        df=True,
    )
    return _transport(base, raw[offset:end], quoted)


def _transport(base: Packet, body: bytes, quoted: bool) -> Packet | None:
    """``base`` with the fields of its TCP, UDP or ICMP header in ``body``."""
    proto = base.proto
    if proto == socket.IPPROTO_TCP and len(body) >= 8:
        sport, dport, seq = struct.unpack_from("!HHI", body)
        if len(body) < 20:
            return replace(base, sport=sport, dport=dport, seq=seq) if quoted else None
        ack, offset_flags = struct.unpack_from("!IH", body, 8)
        offset = (offset_flags >> 12) * 4
        payload = b"" if quoted else body[offset:]
        return replace(
            base,
            sport=sport,
            dport=dport,
            flags=offset_flags & 0x3F,
            seq=seq,
            ack=ack,
            payload=payload,
        )
    if proto == socket.IPPROTO_UDP and len(body) >= 8:
        sport, dport = struct.unpack_from("!HH", body)
        return replace(base, sport=sport, dport=dport, payload=b"" if quoted else body[8:])
    if proto in ICMP_PROTOCOLS and len(body) >= 8 and not quoted:
        icmp_type, icmp_code = body[0], body[1]
        if proto == socket.IPPROTO_ICMPV6:
            icmp_type = _ICMP6_ERRORS.get(icmp_type, icmp_type)
        inner = None
        if icmp_type in (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED):
            inner = decode(body[8:], quoted=True)
        return replace(base, icmp_type=icmp_type, icmp_code=icmp_code, quoted=inner)
    return base
