"""An on-path injector's machinery: capture on the vantage-facing links, answer with forged packets.

A subclass says when it is active (``refresh``, polled) and what to forge for a captured IPv4
packet (``forge``); this class opens the AF_PACKET captures and the raw sending socket only while
active, skips the namespace's own outgoing packets, and sends each forged packet to its
destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4  # sll_pkttype of packets this namespace sends
POLL_INTERVAL = 0.25  # seconds between policy checks


def vantage_interfaces() -> list[str]:
    """This namespace's interfaces that face vantage points (named ``to-v*``)."""
    return sorted(name for _, name in socket.if_nameindex() if name.startswith("to-v"))


class OnPathInjector(ABC):
    """Captures on ``interfaces()`` while ``refresh()`` says so, and sends what ``forge`` makes."""

    label = "injector"

    def __init__(self, *, interfaces: Callable[[], list[str]] = vantage_interfaces) -> None:
        self._interfaces = interfaces
        self._captures: list[socket.socket] = []
        self._sender: socket.socket | None = None
        self._watch: asyncio.Task[None] | None = None
        self.injected = 0

    @abstractmethod
    def refresh(self) -> bool:
        """Re-read what to inject; True while there is something to inject."""

    @abstractmethod
    def forge(self, packet: bytes) -> bytes | None:
        """The forged IPv4 packet answering ``packet`` (None: let it pass unanswered)."""

    async def start(self) -> None:
        """Start following the policy (capture starts when there is something to inject)."""
        if self.refresh():
            self._start_capture()
        self._watch = asyncio.create_task(self._follow())

    async def close(self) -> None:
        """Stop following the policy and capturing."""
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
            active = self.refresh()
            if active and not self.capturing:
                self._start_capture()
            elif not active and self.capturing:
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
        log.info("%s capturing on %s", self.label, ", ".join(self._interfaces()) or "(none)")

    def _stop_capture(self) -> None:
        loop = asyncio.get_event_loop()
        for capture in self._captures:
            loop.remove_reader(capture.fileno())
            capture.close()
        self._captures = []
        if self._sender is not None:
            self._sender.close()
            self._sender = None
            log.info("%s stopped", self.label)

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
            forged = self.forge(packet)
            if forged is None or self._sender is None:
                continue
            destination = socket.inet_ntoa(forged[16:20])
            try:
                self._sender.sendto(forged, (destination, 0))
            except OSError as exc:
                log.warning("%s: sending to %s failed: %s", self.label, destination, exc)
            else:
                self.injected += 1
                log.info("%s: forged a packet to %s", self.label, destination)
