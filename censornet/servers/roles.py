"""The Python servers of each lab namespace: ``inet`` (the MITM server, the control resolver's DoH
front) or an ISP (transparent proxy, DNS and RST injectors, the QUIC filter, the forwarder standing
for a distant or broken upstream), from start to the ready file to a clean SIGTERM exit. The
origins (nginx; aioquic's server for HTTP/3), the blockpage server and the DNS servers are real
software (``censornet.origins``, ``censornet.servers.h3origin``, ``censornet.nameservers``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from censornet import topology
from censornet.nameservers import DELAY_FORWARDER_PORT
from censornet.pki import ensure_pki
from censornet.policy import PolicyWatcher
from censornet.servers.certificates import (
    InterceptionCertificates,
    server_context,
)
from censornet.servers.dnsserver import DnsServer
from censornet.servers.doh import doh_app
from censornet.servers.injector import DnsInjector
from censornet.servers.proxy import TransparentProxy
from censornet.servers.quicfilter import QuicFilter
from censornet.servers.ready import write_ready
from censornet.servers.resolver import ForwardingResolver
from censornet.servers.rst_injector import RstInjector
from censornet.servers.web import SiteApp, WebServer

log = logging.getLogger(__name__)


class Service(Protocol):
    """Anything the role runs: started once, closed on shutdown."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def inet_services(state_dir: Path) -> list[Service]:
    """The servers of the ``inet`` namespace."""
    pki = ensure_pki(state_dir)
    watcher = PolicyWatcher(state_dir, topology.INET)
    sites = SiteApp(watcher.current)
    control_tls = server_context(pki.control_cert, pki.key("control"))
    # The control resolver is unbound (censornet.nameservers), on ports 53 and 853. Its DoH
    # front stays here: unbound's DoH speaks HTTP/2 only, public DoH services HTTP/1.1 as well.
    unbound = ForwardingResolver(topology.CONTROL_RESOLVER_IP, lambda: (), recursive=True)
    return [
        WebServer(
            [topology.MITM_IP],
            443,
            sites,
            certificates=InterceptionCertificates(pki, state_dir / "mitm"),
        ),
        WebServer(
            [topology.CONTROL_RESOLVER_IP],
            443,
            doh_app(unbound),
            certificates=lambda _: control_tls,
        ),
    ]


def isp_services(state_dir: Path, name: str) -> list[Service]:
    """The servers of ISP ``name``'s censor/router namespace."""
    watcher = PolicyWatcher(state_dir, name)
    # The ISP resolver is unbound (censornet.nameservers); names it must answer late go through
    # this forwarder on the namespace's loopback, which adds the delay (a distant upstream).
    distant = ForwardingResolver(topology.AUTH_DNS_IP, lambda: watcher.current().resolver)
    return [
        DnsServer("127.0.0.1", DELAY_FORWARDER_PORT, distant),
        TransparentProxy(watcher.current),
        DnsInjector(watcher.current),
        RstInjector(lambda: watcher.current().rst_inject),
        QuicFilter(watcher.current),
    ]


def services_for(role: str, state_dir: Path) -> list[Service]:
    """The servers of namespace role ``role`` (``inet`` or an ISP name)."""
    if role == topology.INET:
        return inet_services(state_dir)
    return isp_services(state_dir, role)


def ready_path(state_dir: Path, role: str) -> Path:
    """The file that tells the lab ``role``'s servers are all listening."""
    return state_dir / "ready" / role


async def run_role(role: str, state_dir: Path) -> None:
    """Start ``role``'s servers, write its ready file, and serve until SIGTERM or SIGINT."""
    ready = ready_path(state_dir, role)
    ready.unlink(missing_ok=True)
    services = services_for(role, state_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started: list[Service] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        write_ready(ready)
        log.info("%s: %d services listening; ready", role, len(started))
        await stop.wait()
        log.info("%s: stopping", role)
    finally:
        await close_all(started)
        ready.unlink(missing_ok=True)


async def close_all(services: Sequence[Service]) -> None:
    """Close services in reverse start order, logging (not raising) failures."""
    for service in reversed(services):
        try:
            await service.close()
        except Exception:
            log.exception("closing %r failed", service)
