"""A netfilter queue (NFQUEUE) over a raw netlink socket: packets in, a verdict for each out.

The kernel hands every packet an ``iptables ... -j NFQUEUE --queue-num N`` rule matches to the
process bound to queue N, and holds it until that process says accept or drop: an in-path censor
that decides on what it reads. This speaks nfnetlink_queue (``linux/netfilter/nfnetlink_queue.h``)
directly, with no C library: bind the queue in copy-packet mode, read packet messages (id and IP
packet), send verdict messages. Queues are per network namespace.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
NF_DROP, NF_ACCEPT = 0, 1
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_ATTR = struct.Struct("=HH")  # nlattr: length, type
_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER


@dataclass(frozen=True)
class Packet:
    """One queued packet: the kernel's id for the verdict, and the IP packet itself."""

    packet_id: int
    payload: bytes


def _attr(kind: int, data: bytes) -> bytes:
    length = _ATTR.size + len(data)
    return _ATTR.pack(length, kind) + data + bytes(-length % 4)


def _message(kind: int, flags: int, seq: int, queue: int, attrs: bytes) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return (
        _HEADER.pack(_HEADER.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0)
        + body
    )


class NfQueue:
    """Queue ``number`` of this network namespace, bound in copy-packet mode."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self._seq = 0
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            self.sock.bind((0, 0))
            self._configure(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            self._configure(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET)))
        except BaseException:
            self.sock.close()
            raise

    def fileno(self) -> int:
        """The netlink socket, for an event loop's reader."""
        return self.sock.fileno()

    def receive(self) -> list[Packet]:
        """The packets of one read (blocking unless the socket is non-blocking)."""
        data = self.sock.recv(256 * 1024)
        found: list[Packet] = []
        at = 0
        while at + _HEADER.size <= len(data):
            length, kind, _, _, _ = _HEADER.unpack_from(data, at)
            if length < _HEADER.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                packet = _packet(data[at + _HEADER.size + 4 : at + length])
                if packet is not None:
                    found.append(packet)
            at += (length + 3) & ~3
        return found

    def verdict(self, packet: Packet, accept: bool) -> None:
        """Let ``packet`` go on (``accept``) or drop it."""
        header = struct.pack("!II", NF_ACCEPT if accept else NF_DROP, packet.packet_id)
        self._seq += 1
        self.sock.send(
            _message(
                NFQNL_MSG_VERDICT,
                NLM_F_REQUEST,
                self._seq,
                self.number,
                _attr(NFQA_VERDICT_HDR, header),
            )
        )

    def close(self) -> None:
        """Unbind (closing the socket releases the queue; queued packets are dropped)."""
        self.sock.close()

    def _configure(self, attrs: bytes) -> None:
        """Send one config message and wait for its acknowledgement (raises OSError on error)."""
        self._seq += 1
        self.sock.send(
            _message(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, self._seq, self.number, attrs)
        )
        data = self.sock.recv(65536)
        length, kind, _, _, _ = _HEADER.unpack_from(data, 0)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, _HEADER.size)
            if error:
                raise OSError(-error, f"nfnetlink_queue refused queue {self.number}")


def _packet(attrs: bytes) -> Packet | None:
    packet_id: int | None = None
    payload = b""
    at = 0
    while at + _ATTR.size <= len(attrs):
        length, kind = _ATTR.unpack_from(attrs, at)
        if length < _ATTR.size:
            break
        value = attrs[at + _ATTR.size : at + length]
        if kind & _TYPE_MASK == NFQA_PACKET_HDR:
            (packet_id,) = struct.unpack_from("!I", value, 0)
        elif kind & _TYPE_MASK == NFQA_PAYLOAD:
            payload = value
        at += (length + 3) & ~3
    return Packet(packet_id, payload) if packet_id is not None else None


def udp_payload(ip_packet: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(source, source port, destination, destination port, payload) of an IPv4 or IPv6 UDP
    packet (IPv6 without extension headers); None for anything else."""
    if not ip_packet:
        return None
    version = ip_packet[0] >> 4
    if version == 4 and len(ip_packet) >= 28 and ip_packet[9] == socket.IPPROTO_UDP:
        at = (ip_packet[0] & 0x0F) * 4
        src, dst = (
            socket.inet_ntop(socket.AF_INET, ip_packet[12:16]),
            socket.inet_ntop(socket.AF_INET, ip_packet[16:20]),
        )
    elif version == 6 and len(ip_packet) >= 48 and ip_packet[6] == socket.IPPROTO_UDP:
        at = 40
        src, dst = (
            socket.inet_ntop(socket.AF_INET6, ip_packet[8:24]),
            socket.inet_ntop(socket.AF_INET6, ip_packet[24:40]),
        )
    else:
        return None
    sport, dport = struct.unpack_from("!HH", ip_packet, at)
    return src, sport, dst, dport, ip_packet[at + 8 :]
