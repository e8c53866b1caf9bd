"""The lab's DNS: nsd as the authoritative server, unbound as the ISP and control resolvers.

nsd serves one zone per registered domain of ``topology.ZONE`` (SOA, NS, A and their AAAA twins, TTL
300) on the authoritative address, over IPv4 and IPv6; the resolvers answer over both too. Each
resolver is an unbound with a stub zone per lab zone pointing at nsd (the lab has no root), DNSSEC
off, and the censoring an ISP does with its own resolver rendered from the ``resolver`` policy rules
as unbound does it for real ISPs:

- ``nxdomain`` -> ``local-zone: always_nxdomain``; ``refused`` -> ``always_refuse``;
- ``drop`` -> ``local-zone: deny`` (the query is dropped: a timeout);
- ``answer`` with addresses -> ``local-zone: redirect`` + ``local-data`` (bogon, blockpage IP,
  spoofed address, for the name and everything under it);
- ``servfail`` and ``answer`` without addresses but with a delay -> the name is forwarded, not
  cached, to a forwarder on the ISP namespace's loopback that stands for a broken or distant
  upstream (it fails the name, or answers it late; no real server software models that). The
  control resolver has no such forwarder: its ``servfail`` names point at a closed port.

A platform DNS outage (``authoritative`` rules) removes the platform's zones from nsd: nsd then
refuses them and every resolver answers SERVFAIL. Each switch reloads what changed through
unbound-control on a unix socket in the state directory, and empties the caches, the
infrastructure cache (upstream timeouts and back-offs) included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from censornet import topology
from censornet.netns import LabError
from censornet.pki import CONTROL_LABEL, pki_paths
from censornet.policy import DnsRule, Policy, name_matches

ZONE_TTL = 300
NSD = "nsd"
UNBOUND = "unbound"
UNBOUND_CONTROL = "unbound-control"
DELAY_FORWARDER_PORT = 5353  # on each ISP namespace's loopback: the delaying forwarder
SERVFAIL_UPSTREAM = "127.0.0.1@1"  # nothing listens there: unbound fails the name at once
CONTROL_RESOLVER = "control"
DOT_PORT = 853


def missing_binaries() -> list[str]:
    """The DNS server programs the lab needs that are not installed."""
    return [b for b in (NSD, UNBOUND, UNBOUND_CONTROL) if shutil.which(b) is None]


def zone_of(name: str) -> str:
    """The zone ``name`` belongs to: its last two labels (``abs.twimg.com`` -> ``twimg.com``)."""
    return ".".join(name.split(".")[-2:])


def zones() -> dict[str, dict[str, tuple[str, ...]]]:
    """Every lab zone with its names and their A records."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, addresses in topology.ZONE.items():
        out.setdefault(zone_of(name), {})[name] = addresses
    return out


def zone_file(zone: str, records: dict[str, tuple[str, ...]]) -> str:
    """The master file of ``zone``."""
    lines = [
        f"$ORIGIN {zone}.",
        f"$TTL {ZONE_TTL}",
        f"@ IN SOA ns.auth.lab. hostmaster.{zone}. 1 3600 600 86400 {ZONE_TTL}",
        "@ IN NS ns.auth.lab.",
    ]
    for name, addresses in sorted(records.items()):
        owner = "@" if name == zone else name.removesuffix(f".{zone}")
        lines += [f"{owner} IN A {ip}" for ip in addresses]
        lines += [f"{owner} IN AAAA {topology.ipv6_of(ip)}" for ip in addresses]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ResolverSite:
    """One unbound: its role (namespace), its name, and where it listens."""

    role: str
    name: str  # "isp1", "isp2", "control"
    address: str


def resolvers() -> tuple[ResolverSite, ...]:
    """Every resolver of the lab: one per ISP, and the control resolver in inet."""
    isps = tuple(ResolverSite(i.name, i.name, i.resolver) for i in topology.ISPS)
    return (*isps, ResolverSite(topology.INET, CONTROL_RESOLVER, topology.CONTROL_RESOLVER_IP))


class NameServers:
    """The files of a lab's nsd and unbounds (under ``state_dir/dns``) and their argv."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.directory = state_dir / "dns"

    def nsd_conf(self) -> Path:
        return self.directory / "nsd.conf"

    def unbound_conf(self, name: str) -> Path:
        return self.directory / f"unbound-{name}.conf"

    def control_socket(self, name: str) -> Path:
        return self.directory / f"unbound-{name}.ctl"

    def prepare(self, policy_of: dict[str, Policy]) -> None:
        """Write nsd's zones and configuration and every unbound configuration."""
        missing = missing_binaries()
        if missing:
            raise LabError(
                f"the lab's DNS needs {', '.join(missing)} (Debian: apt-get install nsd unbound)"
            )
        (self.directory / "zones").mkdir(parents=True, exist_ok=True)
        (self.directory / "nsd").mkdir(exist_ok=True)
        for zone, records in zones().items():
            _write(self.directory / "zones" / f"{zone}.zone", zone_file(zone, records))
        inet = policy_of.get(topology.INET, Policy())
        self.write_nsd(inet.authoritative)
        for site in resolvers():
            self.write_unbound(site, _rules_for(site, policy_of))

    def nsd_argv(self) -> list[str]:
        return [NSD, "-d", "-c", str(self.nsd_conf())]

    def unbound_argv(self, name: str) -> list[str]:
        return [UNBOUND, "-d", "-p", "-c", str(self.unbound_conf(name))]

    def write_nsd(self, outage: Iterable[DnsRule]) -> bool:
        """Write nsd.conf serving every zone not under an outage rule; True when it changed."""
        rules = tuple(outage)
        served = [z for z in zones() if not any(name_matches(z, r.suffix) for r in rules)]
        d = self.directory
        lines = [
            "server:",
            f"  ip-address: {topology.AUTH_DNS_IP}",
            f"  ip-address: {topology.ipv6_of(topology.AUTH_DNS_IP)}",
            "  port: 53",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{d / "zones"}"',
            f'  zonelistfile: "{d / "nsd" / "zone.list"}"',
            '  database: ""',
            f'  pidfile: "{d / "nsd" / "nsd.pid"}"',
            f'  xfrdfile: "{d / "nsd" / "xfrd.state"}"',
            f'  xfrdir: "{d / "nsd"}"',
            f'  logfile: "{self.state_dir / "logs" / "nsd.log"}"',
            "  server-count: 1",
            "  hide-version: yes",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in served:
            lines += ["zone:", f"  name: {zone}", f"  zonefile: {zone}.zone"]
        return _write(self.nsd_conf(), "\n".join(lines) + "\n")

    def write_unbound(self, site: ResolverSite, rules: tuple[DnsRule, ...]) -> bool:
        """Write ``site``'s unbound.conf for ``rules``; True when it changed."""
        text = render_unbound(site, rules, self.state_dir)
        return _write(self.unbound_conf(site.name), text)

    def refresh_resolvers(self, reload: Iterable[str], flush: Iterable[str]) -> None:
        """At once: have the unbounds in ``reload`` re-read their configuration (which empties
        the answer caches) and empty the answer cache of those in ``flush``; then empty every
        one's infrastructure cache, which a reload keeps (unbound keeps it while its size is
        unchanged): a scenario's upstream timeouts or SERVFAILs must not slow the next one's
        forwarding (an upstream backed off for minutes answered X's names too late for a DNS
        injection's race to show)."""
        reload, flush = list(reload), list(flush)
        first: list[tuple[str, tuple[str, ...]]] = [(name, ("reload",)) for name in reload]
        first += [(name, ("flush_zone", ".")) for name in flush]
        failed = self._control(first)
        if not failed:
            failed = self._control([(name, ("flush_infra", "all")) for name in reload + flush])
        if failed:
            raise LabError("unbound-control failed: " + "; ".join(failed))

    def _control(self, commands: list[tuple[str, tuple[str, ...]]]) -> list[str]:
        """Run the unbound-control ``commands`` (resolver name, arguments) at once; the failures."""
        running = [
            (name, command, subprocess.Popen(
                [UNBOUND_CONTROL, "-c", str(self.unbound_conf(name)), *command],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            ))
            for name, command in commands
        ]  # fmt: skip
        failed = []
        for name, command, proc in running:
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if proc.returncode != 0:
                failed.append(f"{' '.join(command)} for resolver {name}: {out.strip()[-300:]}")
        return failed

    def wait_ready(self, deadline: float, alive: dict[str, object]) -> None:
        """Wait until every unbound answers on its control socket and nsd has started."""
        pending = {site.name for site in resolvers()}
        nsd_log = self.state_dir / "logs" / "nsd.log"
        nsd_up = False
        while True:
            for name in sorted(pending):
                if self._status(name):
                    pending.discard(name)
            if not nsd_up and nsd_log.exists():
                nsd_up = "nsd started" in nsd_log.read_text(errors="replace")
            if not pending and nsd_up:
                return
            for label, check in alive.items():
                if callable(check) and not check():
                    raise LabError(f"{label} (the lab's DNS) exited during start")
            if time.monotonic() > deadline:
                waiting = sorted(pending) + ([] if nsd_up else ["nsd"])
                raise LabError(f"the lab's DNS servers not ready in time: {', '.join(waiting)}")
            time.sleep(0.05)

    def _status(self, name: str) -> bool:
        done = subprocess.run(
            [UNBOUND_CONTROL, "-c", str(self.unbound_conf(name)), "status"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0


def _rules_for(site: ResolverSite, policy_of: dict[str, Policy]) -> tuple[DnsRule, ...]:
    policy = policy_of.get(site.role, Policy())
    return policy.control_resolver if site.name == CONTROL_RESOLVER else policy.resolver


def render_unbound(site: ResolverSite, rules: tuple[DnsRule, ...], state_dir: Path) -> str:
    """The unbound.conf of resolver ``site`` censoring by ``rules``."""
    d = state_dir / "dns"
    lines = [
        "# Generated by censornet.nameservers; rewritten on every scenario switch.",
        "server:",
        f"  interface: {site.address}@53",
        f"  interface: {topology.ipv6_of(site.address)}@53",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{d}"',
        f'  pidfile: "{d / f"unbound-{site.name}.pid"}"',
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 0",
        "  num-threads: 1",
        "  do-ip6: yes",
        "  prefer-ip4: yes",
        "  so-reuseport: no",
        "  access-control: 0.0.0.0/0 allow",
        "  access-control: ::/0 allow",
        '  module-config: "iterator"',
        "  do-not-query-localhost: no",
        "  qname-minimisation: no",
        # Room for a probe's A and AAAA queries at once, each held by a delayed upstream: a
        # full list makes unbound drop (jostle) queries older than 200 ms.
        "  outgoing-range: 256",
        "  num-queries-per-thread: 128",
        # The delaying forwarder answers in 300 ms or more by design (a distant upstream): wait
        # for it as behind a slow link (unbound's default, 376 ms, re-sends nearly every query).
        "  unknown-server-time-limit: 1128",
        "  msg-cache-size: 1m",
        "  rrset-cache-size: 1m",
        "  key-cache-size: 0",
        "  neg-cache-size: 0",
        "  infra-cache-numhosts: 100",
    ]
    if site.name == CONTROL_RESOLVER:
        pki = pki_paths(state_dir)
        lines += [
            f"  interface: {site.address}@{DOT_PORT}",
            f"  interface: {topology.ipv6_of(site.address)}@{DOT_PORT}",
            f"  tls-port: {DOT_PORT}",
            f'  tls-service-key: "{pki.key(CONTROL_LABEL)}"',
            f'  tls-service-pem: "{pki.cert(CONTROL_LABEL)}"',
        ]
    stubs: dict[str, str] = dict.fromkeys(zones(), topology.AUTH_DNS_IP)
    forwards: list[str] = []
    for rule in rules:
        suffix = rule.suffix.lower().rstrip(".")
        if rule.action == "nxdomain":
            lines.append(f'  local-zone: "{suffix}." always_nxdomain')
        elif rule.action == "refused":
            lines.append(f'  local-zone: "{suffix}." always_refuse')
        elif rule.action == "drop":
            lines.append(f'  local-zone: "{suffix}." deny')
        elif rule.action == "servfail" and site.name == CONTROL_RESOLVER:
            stubs[suffix] = SERVFAIL_UPSTREAM
        elif rule.action == "servfail":
            forwards.append(suffix)
        elif rule.answer:
            lines.append(f'  local-zone: "{suffix}." redirect')
            lines += [
                f'  local-data: "{suffix}. {ZONE_TTL} IN {"AAAA" if ":" in ip else "A"} {ip}"'
                for ip in rule.answer
            ]
        elif rule.delay_ms:
            forwards.append(suffix)
    lines += [
        "remote-control:",
        "  control-enable: yes",
        f'  control-interface: "{d / f"unbound-{site.name}.ctl"}"',
        "  control-use-cert: no",
    ]
    for zone, address in stubs.items():
        if zone in forwards:
            continue  # the forward zone covers it
        lines += ["stub-zone:", f'  name: "{zone}."', f"  stub-addr: {address}"]
    for suffix in forwards:
        lines += [
            "forward-zone:",
            f'  name: "{suffix}."',
            f"  forward-addr: 127.0.0.1@{DELAY_FORWARDER_PORT}",
            "  forward-no-cache: yes",
        ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` atomically; True when the content changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return True
