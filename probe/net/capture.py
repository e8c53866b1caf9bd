"""Packet capture for evidence: an AF_PACKET socket with a kernel BPF filter, and the check for it.

``Capture(remote)`` records, while it is open, every packet to or from ``remote`` (IPv4 or IPv6, as
``remote`` is; and, when asked, every ICMP or ICMPv6 packet, since an ICMP error comes from a
router, not from ``remote``), in both directions, on every interface. The filter is a classic BPF
program written here and attached to the socket (what queued before that is drained), so the kernel
hands over only those packets: a busy host costs the probe little. (scapy's ``filter=`` needs
libpcap or tcpdump to compile the expression, which a probe host may lack.)

Capturing needs raw-socket capability (root or CAP_NET_RAW). ``raw_sockets_available()`` checks
once by opening an AF_PACKET socket that is never bound (it receives nothing), logs the outcome
once, and caches it. ``BLOCKPROBE_PACKETS=off`` turns packet evidence off.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from probe.net.headers import Packet, decode

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SNAPLEN = 2048  # enough for headers, a ClientHello and a DNS answer
_SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: the frame's ethertype
# Classic BPF opcodes.
_LD_W_ABS, _LD_B_ABS, _ALU_AND_K, _JEQ_K, _RET_K, _JA = 0x20, 0x30, 0x54, 0x15, 0x06, 0x05


@functools.cache
def raw_sockets_available() -> bool:
    """Whether this process may capture packets (checked, and said, once per process)."""
    if os.environ.get("BLOCKPROBE_PACKETS", "").lower() in ("off", "0", "no"):
        log.info("packet evidence off (BLOCKPROBE_PACKETS=off)")
        return False
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except (PermissionError, OSError, AttributeError) as exc:
        log.info("packet evidence not available (needs root or CAP_NET_RAW): %s", exc)
        return False
    log.info("packet evidence available: raw sockets allowed")
    return True


def host_filter(remote: str, *, icmp: bool = False) -> list[tuple[int, int, int, int]]:
    """A BPF program (code, jt, jf, k) accepting packets from or to ``remote``.

    With ``icmp``, every ICMP packet (ICMPv6 for an IPv6 ``remote``) is accepted too. The program
    runs on packets that start at the IP header (an AF_PACKET ``SOCK_DGRAM`` socket).
    """
    if ":" in remote:
        return host_filter6(remote, icmp=icmp)
    address = struct.unpack("!I", socket.inet_aton(remote))[0]
    accept, drop = (_RET_K, 0, 0, SNAPLEN), (_RET_K, 0, 0, 0)
    return [
        (_LD_W_ABS, 0, 0, _SKF_AD_PROTOCOL),
        (_JEQ_K, 0, 9, ETH_P_IP),  # not IPv4: drop
        (_LD_B_ABS, 0, 0, 0),
        (_ALU_AND_K, 0, 0, 0xF0),
        (_JEQ_K, 0, 6, 0x40),  # IP version is not 4: drop
        (_LD_W_ABS, 0, 0, 12),
        (_JEQ_K, 5, 0, address),  # source is remote: accept
        (_LD_W_ABS, 0, 0, 16),
        (_JEQ_K, 3, 0, address),  # destination is remote: accept
        (_LD_B_ABS, 0, 0, 9),
        (_JEQ_K, 1, 0, socket.IPPROTO_ICMP if icmp else 0x100),  # ICMP (when asked): accept
        drop,
        accept,
    ]


def host_filter6(remote: str, *, icmp: bool = False) -> list[tuple[int, int, int, int]]:
    """``host_filter`` for an IPv6 ``remote``: its four address words compared at the source
    (offset 8) and the destination (offset 24); ICMPv6 when its header follows the fixed one."""
    words = struct.unpack("!4I", socket.inet_pton(socket.AF_INET6, remote))
    accept, drop = (_RET_K, 0, 0, SNAPLEN), (_RET_K, 0, 0, 0)

    def matches(offset: int, miss: int) -> list[tuple[int, int, int, int]]:
        """Load and compare each word; on a mismatch jump ``miss`` past this block's end."""
        out: list[tuple[int, int, int, int]] = []
        for i, word in enumerate(words):
            left = 2 * (len(words) - i - 1)  # instructions after this comparison in the block
            out += [(_LD_W_ABS, 0, 0, offset + 4 * i), (_JEQ_K, 0, left + miss, word)]
        return out

    # Layout: header checks (5), source block (8), "accept" jump (1), destination block (8),
    # ICMPv6 check (2), drop, accept.
    program = [
        (_LD_W_ABS, 0, 0, _SKF_AD_PROTOCOL),
        (_JEQ_K, 0, 23, ETH_P_IPV6),  # not IPv6: drop
        (_LD_B_ABS, 0, 0, 0),
        (_ALU_AND_K, 0, 0, 0xF0),
        (_JEQ_K, 0, 20, 0x60),  # IP version is not 6: drop
    ]
    program += matches(8, 1)  # source differs: skip the jump to accept
    program.append((_JA, 0, 0, 12))  # source is remote: accept
    program += matches(24, 1)  # destination differs: skip the jump, on to the ICMPv6 check
    program.append((_JA, 0, 0, 3))  # destination is remote: accept
    program += [
        (_LD_B_ABS, 0, 0, 6),  # next header
        (_JEQ_K, 1, 0, socket.IPPROTO_ICMPV6 if icmp else 0x100),  # ICMPv6 (when asked): accept
        drop,
        accept,
    ]
    return program


@dataclass(frozen=True)
class Captured:
    """One captured packet: when (loop time), which way, and its decoded headers."""

    at: float
    outgoing: bool
    packet: Packet


class Capture:
    """Records the packets of ``host_filter(remote, icmp=icmp)`` while open (``async with``)."""

    def __init__(self, remote: str, *, icmp: bool = False) -> None:
        self._program = host_filter(remote, icmp=icmp)
        self._socket: socket.socket | None = None
        self._arrived = asyncio.Event()
        self.packets: list[Captured] = []

    async def __aenter__(self) -> Capture:
        # Every interface, every protocol: the filter decides. Packets that arrived before it was
        # attached are drained; nothing of ours is in flight yet.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        try:
            _attach(sock, self._program)
            sock.setblocking(False)
            _drain(sock)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop capturing (the packets recorded so far stay)."""
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None

    async def wait_for(self, found: Callable[[list[Captured]], bool], deadline: float) -> bool:
        """Wait until ``found(self.packets)`` holds or ``deadline`` (loop time); whether it held."""
        loop = asyncio.get_running_loop()
        while not found(self.packets):
            self._arrived.clear()
            if loop.time() >= deadline:
                return False
            try:
                async with asyncio.timeout_at(deadline):
                    await self._arrived.wait()
            except TimeoutError:
                return found(self.packets)
        return True

    def _on_readable(self) -> None:
        assert self._socket is not None
        now = asyncio.get_running_loop().time()
        while True:
            try:
                raw, address = self._socket.recvfrom(SNAPLEN)
            except (BlockingIOError, InterruptedError):
                break
            packet = decode(raw)
            if packet is not None:
                self.packets.append(Captured(now, address[2] == PACKET_OUTGOING, packet))
        self._arrived.set()


def _drain(sock: socket.socket) -> None:
    """Discard what a non-blocking socket has queued."""
    while True:
        try:
            sock.recv(SNAPLEN)
        except (BlockingIOError, InterruptedError):
            return


def _attach(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program, so the buffer may go afterwards."""
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
