"""An ISP's in-path QUIC filter: it decrypts each client Initial and acts on the SNI inside.

A scenario sends UDP 443 from the vantage side to netfilter queue ``QUIC_QUEUE``
(``-j NFQUEUE --queue-num 443 --queue-bypass``); this filter reads every queued packet, and when it
is a QUIC v1 client Initial whose ClientHello names a host under a ``quic_filter`` rule of the
ISP's policy (``censornet.servers.quicinitial`` derives the Initial keys from the Destination
Connection ID and decrypts it), it drops the packet (``drop``: the handshake times out, as the
GFW's and Russia's QUIC SNI filters do) or drops it and answers the client with a forged server
Initial carrying a CONNECTION_CLOSE from the server's address (``close``). Every other packet is
accepted. Without the queue (no nfnetlink_queue in the kernel) the filter logs why and stands
aside; ``--queue-bypass`` then lets the packets through.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable

from censornet.policy import Policy, QuicRule, name_matches
from censornet.servers.nfqueue import NfQueue, Packet, udp_payload
from censornet.servers.quicinitial import forge_close, read_client_initial

log = logging.getLogger(__name__)

QUIC_QUEUE = 443
FORGED_ERROR = 0x100 + 40  # CRYPTO_ERROR carrying the TLS alert handshake_failure


def quic_rule(policy: Policy, sni: str | None) -> QuicRule | None:
    """The first ``quic_filter`` rule covering ``sni``."""
    return next((r for r in policy.quic_filter if sni and name_matches(sni, r.suffix)), None)


class QuicFilter:
    """Judges the packets of one ISP's QUIC queue by the current policy."""

    def __init__(self, policy: Callable[[], Policy], queue: int = QUIC_QUEUE) -> None:
        self.policy = policy
        self.number = queue
        self._queue: NfQueue | None = None
        self._raw: socket.socket | None = None

    async def start(self) -> None:
        """Bind the queue and start judging (a missing queue facility is logged, not raised)."""
        try:
            self._queue = NfQueue(self.number)
        except OSError as exc:
            log.warning("QUIC filter off: cannot bind netfilter queue %d: %s", self.number, exc)
            return
        self._queue.sock.setblocking(False)
        self._raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        asyncio.get_running_loop().add_reader(self._queue.fileno(), self._readable)

    async def close(self) -> None:
        """Stop judging and release the queue."""
        if self._queue is not None:
            asyncio.get_running_loop().remove_reader(self._queue.fileno())
            self._queue.close()
            self._queue = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def _readable(self) -> None:
        assert self._queue is not None
        while True:
            try:
                packets = self._queue.receive()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # the kernel dropped messages: carry on
                    log.warning("QUIC filter: netlink buffer overrun")
                    continue
                raise
            for packet in packets:
                self._judge(packet)

    def _judge(self, packet: Packet) -> None:
        assert self._queue is not None
        parts = udp_payload(packet.payload)
        initial = read_client_initial(parts[4]) if parts is not None else None
        rule = quic_rule(self.policy(), initial.sni) if initial is not None else None
        self._queue.verdict(packet, accept=rule is None)
        if rule is None or parts is None or initial is None:
            return
        client, client_port, server, server_port, _ = parts
        log.info(
            "QUIC Initial for %s from %s:%d: %s", initial.sni, client, client_port, rule.action
        )
        if rule.action == "close" and self._raw is not None and ":" not in client:
            forged = forge_close(initial, FORGED_ERROR)
            self._raw.sendto(
                _ipv4_udp(server, server_port, client, client_port, forged), (client, 0)
            )


def _ipv4_udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    """An IPv4 UDP packet (the kernel fills the IP checksum; a zero UDP checksum means none)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,  # don't fragment
        64,
        socket.IPPROTO_UDP,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header + udp
