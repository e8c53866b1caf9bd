"""IPv4 packets as a capture sees them: the header fields that packet evidence compares.

``decode`` reads one IPv4 packet, starting at the IP header as an AF_PACKET ``SOCK_DGRAM`` socket
delivers it, into a ``Packet``: addresses, IP TTL, IP ID and DF flag, and the TCP, UDP or ICMP
fields that matter. An ICMP error carries the ``quoted`` packet that caused it (its IP header and
the first 8 bytes of its transport header, RFC 792), decoded the same way. This is ``struct``
rather than scapy on purpose: decoding runs once per captured packet, and importing scapy's IP
layers alone takes about 0.35 s.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED = 3, 11
_IP = struct.Struct("!BBHHHBBH4s4s")


@dataclass(frozen=True)
class Packet:
    """The fields of one IPv4 packet that evidence needs (transport fields per protocol)."""

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
    """The ``Packet`` in ``raw`` (None when it is not a whole, unfragmented IPv4 packet).

    With ``quoted``, ``raw`` is the part of a packet an ICMP error quotes: the transport header
    may be cut after 8 bytes, and the IP total length may exceed what is there.
    """
    if len(raw) < _IP.size or raw[0] >> 4 != 4:
        return None
    version_ihl, _, total, ip_id, frag, ttl, proto, _, src, dst = _IP.unpack_from(raw)
    header = (version_ihl & 0x0F) * 4
    if header < _IP.size or frag & 0x1FFF:
        return None  # bad header length, or a fragment that is not the first
    end = len(raw) if quoted else min(total, len(raw))
    body = raw[header:end]
    base = Packet(
        src=socket.inet_ntoa(src),
        dst=socket.inet_ntoa(dst),
        proto=proto,
        ttl=ttl,
        ip_id=ip_id,
        df=bool(frag & 0x4000),
    )
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
    if proto == socket.IPPROTO_ICMP and len(body) >= 8 and not quoted:
        icmp_type, icmp_code = body[0], body[1]
        inner = None
        if icmp_type in (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED):
            inner = decode(body[8:], quoted=True)
        return replace(base, icmp_type=icmp_type, icmp_code=icmp_code, quoted=inner)
    return base
