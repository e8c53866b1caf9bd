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
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from censornet.policy import name_matches
from censornet.servers.clienthello import parse_sni
from censornet.servers.onpath import OnPathInjector, vantage_interfaces

log = logging.getLogger(__name__)

FORGED_IP_TTL = 37
FORGED_IP_ID = 0x1337
TLS_PORT = 443
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


class RstInjector(OnPathInjector):
    """Captures on ``interfaces()`` and forges RSTs while ``suffixes()`` names something."""

    label = "rst injector"

    def __init__(
        self,
        suffixes: Callable[[], tuple[str, ...]],
        *,
        ip_ttl: int = FORGED_IP_TTL,
        ip_id: int = FORGED_IP_ID,
        interfaces: Callable[[], list[str]] = vantage_interfaces,
    ) -> None:
        super().__init__(interfaces=interfaces)
        self._suffixes = suffixes
        self._ip_ttl = ip_ttl
        self._ip_id = ip_id
        self._current: tuple[str, ...] = ()

    def _start_capture(self) -> None:
        from scapy.layers.inet import IP  # noqa: F401  (import once here, not on a packet)

        super()._start_capture()

    def refresh(self) -> bool:
        """Re-read the SNI suffixes to reset."""
        self._current = self._suffixes()
        return bool(self._current)

    def forge(self, packet: bytes) -> bytes | None:
        """A RST to the client for a ClientHello naming a suffix, with the distinctive TTL/ID."""
        return forge_reset(packet, self._current, ip_ttl=self._ip_ttl, ip_id=self._ip_id)


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
    from censornet.servers.ready import write_ready

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
