"""An on-path TLS reset injector at an ISP: a forged RST with a telltale IP TTL and IP ID.

AF_PACKET sockets on the vantage-facing interfaces (``to-v*``) see every segment a client sends
towards port 443. When one carries a ClientHello whose SNI is covered, the injector sends the
client, through a raw IP socket, an RST|ACK from the server's address and port whose sequence
number is the segment's acknowledgement number (exactly what the client expects next, so its
kernel accepts the RST), with IP TTL ``FORGED_IP_TTL`` and IP ID ``FORGED_IP_ID``: unlike the
server's packets, which arrive with TTL 63 and IP ID 0 at a vantage point. Packets are forged
with scapy.

A tap cannot stop the real flow. With ``--drop`` (the default of the command line) the injector
adds one rule to the ISP's ``BP_FWD`` chain that drops forwarded port-443 segments containing
the name, so the server never sees the ClientHello and the forged RST has no race to lose; the
rule is removed on exit. Because the tap sees packets before the router checks their TTL, a
ClientHello sent with IP TTL 1 still draws the RST: the injector sits at hop 1.

``python -m censornet.servers.rst_injector --state DIR --sni twitter.com`` runs it in an ISP
namespace until SIGTERM, writing ``DIR/ready/rst_injector`` once it captures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from censornet.policy import name_matches
from censornet.servers.clienthello import parse_sni
from censornet.servers.injector import vantage_interfaces
from censornet.servers.roles import write_ready

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
FORGED_IP_TTL = 37
FORGED_IP_ID = 0x1337
TLS_PORT = 443
POLL_INTERVAL = 0.25
RULE_COMMENT = "bp-rst-injector"
READY_NAME = "rst_injector"


def forge_reset(
    packet: bytes,
    suffixes: Sequence[str],
    *,
    ip_ttl: int = FORGED_IP_TTL,
    ip_id: int = FORGED_IP_ID,
) -> bytes | None:
    """The forged RST for the ClientHello segment in IPv4 ``packet``, or None if not covered."""
    if not _may_carry_client_hello(packet):
        return None
    from scapy.layers.inet import IP, TCP

    segment = IP(packet)
    tcp = segment[TCP]
    sni = parse_sni(bytes(tcp.payload))
    if sni is None or not any(name_matches(sni, suffix) for suffix in suffixes):
        return None
    reset = IP(src=segment.dst, dst=segment.src, ttl=ip_ttl, id=ip_id) / TCP(
        sport=tcp.dport,
        dport=tcp.sport,
        flags="RA",
        seq=tcp.ack,
        ack=(tcp.seq + len(tcp.payload)) % 2**32,
        window=0,
    )
    return bytes(reset)


def drop_rule(sni: str) -> list[str]:
    """iptables arguments (after -A/-D) of the BP_FWD rule that drops ClientHellos with ``sni``."""
    return [
        "BP_FWD",
        "-p",
        "tcp",
        "--dport",
        str(TLS_PORT),
        "-m",
        "string",
        "--algo",
        "bm",
        "--string",
        sni,
        "-m",
        "comment",
        "--comment",
        RULE_COMMENT,
        "-j",
        "DROP",
    ]


class RstInjector:
    """Captures on ``interfaces()`` and forges RSTs while ``suffixes()`` names something."""

    def __init__(
        self,
        suffixes: Callable[[], tuple[str, ...]],
        *,
        ip_ttl: int = FORGED_IP_TTL,
        ip_id: int = FORGED_IP_ID,
        interfaces: Callable[[], list[str]] = vantage_interfaces,
    ) -> None:
        self._suffixes = suffixes
        self._ip_ttl = ip_ttl
        self._ip_id = ip_id
        self._interfaces = interfaces
        self._captures: list[socket.socket] = []
        self._sender: socket.socket | None = None
        self._watch: asyncio.Task[None] | None = None
        self._current: tuple[str, ...] = ()
        self.injected = 0

    async def start(self) -> None:
        """Start following ``suffixes()`` (capture starts when it first names something)."""
        from scapy.layers.inet import IP  # noqa: F401  (import once here, not on a packet)

        self._current = self._suffixes()
        if self._current:
            self._start_capture()
        self._watch = asyncio.create_task(self._follow())

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

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            self._current = self._suffixes()
            if self._current and not self.capturing:
                self._start_capture()
            elif not self._current and self.capturing:
                self._stop_capture()

    def _start_capture(self) -> None:
        loop = asyncio.get_running_loop()
        self._sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        for name in self._interfaces():
            capture = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            capture.bind((name, ETH_P_IP))
            capture.setblocking(False)
            loop.add_reader(capture.fileno(), self._on_readable, capture)
            self._captures.append(capture)
        log.info("rst injector capturing on %s", ", ".join(self._interfaces()) or "(none)")

    def _stop_capture(self) -> None:
        loop = asyncio.get_running_loop()
        for capture in self._captures:
            loop.remove_reader(capture.fileno())
            capture.close()
        self._captures = []
        if self._sender is not None:
            self._sender.close()
            self._sender = None
            log.info("rst injector stopped")

    def _on_readable(self, capture: socket.socket) -> None:
        while True:
            try:
                packet, address = capture.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if address[2] == PACKET_OUTGOING:
                continue
            forged = forge_reset(packet, self._current, ip_ttl=self._ip_ttl, ip_id=self._ip_id)
            if forged is None or self._sender is None:
                continue
            destination = socket.inet_ntoa(forged[16:20])
            try:
                self._sender.sendto(forged, (destination, 0))
            except OSError as exc:
                log.warning("reset injection to %s failed: %s", destination, exc)
            else:
                self.injected += 1
                log.info("injected a RST to %s (IP TTL %d)", destination, self._ip_ttl)


def _may_carry_client_hello(packet: bytes) -> bool:
    """A cheap test before scapy: IPv4, TCP to port 443, payload starting with a handshake."""
    if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return False
    header = (packet[0] & 0x0F) * 4
    if int.from_bytes(packet[6:8], "big") & 0x1FFF or len(packet) < header + 20:
        return False
    if int.from_bytes(packet[header + 2 : header + 4], "big") != TLS_PORT:
        return False
    offset = header + (packet[header + 12] >> 4) * 4
    return len(packet) > offset and packet[offset] == 0x16


def _iptables(action: str, sni: str) -> None:
    done = subprocess.run(
        ["iptables", action, *drop_rule(sni)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        log.warning("iptables %s for %s failed: %s", action, sni, done.stderr.strip())


async def serve(
    state_dir: Path, snis: tuple[str, ...], *, ip_ttl: int, ip_id: int, drop: bool
) -> None:
    """Inject for ``snis`` (and drop their ClientHellos if ``drop``) until a stop signal."""
    injector = RstInjector(lambda: snis, ip_ttl=ip_ttl, ip_id=ip_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    ready = state_dir / "ready" / READY_NAME
    added: list[str] = []
    try:
        if drop:
            for sni in snis:
                _iptables("-A", sni)
                added.append(sni)
        await injector.start()
        write_ready(ready)
        await stop.wait()
    finally:
        await injector.close()
        for sni in added:
            _iptables("-D", sni)
        ready.unlink(missing_ok=True)
        log.info("rst injector exiting after %d injections", injector.injected)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, log to stderr, inject until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m censornet.servers.rst_injector")
    parser.add_argument("--state", type=Path, required=True, help="the lab's state directory")
    parser.add_argument("--sni", action="append", required=True, help="name (and subdomains)")
    parser.add_argument("--ttl", type=int, default=FORGED_IP_TTL, help="IP TTL of forged RSTs")
    parser.add_argument("--ip-id", type=int, default=FORGED_IP_ID, help="IP ID of forged RSTs")
    parser.add_argument(
        "--no-drop",
        dest="drop",
        action="store_false",
        help="do not drop the real ClientHello in BP_FWD (the RST then races the server)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s rst_injector %(levelname)s %(message)s",
    )
    asyncio.run(
        serve(args.state, tuple(args.sni), ip_ttl=args.ttl, ip_id=args.ip_id, drop=args.drop)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
