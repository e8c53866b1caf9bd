"""Resolver strings and the system resolver, parsed without any DNS library (config checks use it).

The forms are described in ``probe.steps.dns``.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# As ``probe.model.observations.DnsTransport`` (not imported: the wire models are not needed here).
DnsTransport = Literal["system", "udp", "tcp", "doh", "dot"]

RESOLV_CONF = Path("/etc/resolv.conf")
_DEFAULT_PORTS: dict[DnsTransport, int] = {"system": 53, "udp": 53, "tcp": 53, "dot": 853}
_SPEC_TRANSPORTS: dict[str, DnsTransport] = {"udp": "udp", "tcp": "tcp", "tls": "dot"}


@dataclass(frozen=True)
class Resolver:
    """Where and how to send a query. ``ip`` is None only for DoH resolved by the system."""

    transport: DnsTransport
    ip: str | None
    port: int
    url: str | None = None  # DoH: the URL without its fragment
    server_name: str | None = None  # DoT: the name the certificate must carry
    control: bool = False

    @property
    def label(self) -> str:
        """The ``DNSObservation.resolver`` string: ``udp:198.18.103.53``, ``doh:https://...``."""
        if self.transport == "doh":
            return f"doh:{self.url}"
        prefix = "tls" if self.transport == "dot" else self.transport
        return f"{prefix}:{_join(self.ip or '', self.port, _DEFAULT_PORTS[self.transport])}"


def parse_resolver(spec: str, *, control: bool = True) -> Resolver:
    """A ``Resolver`` from a control-resolver string; ValueError when it is malformed."""
    if spec.startswith("https://"):
        url, _, bootstrap = spec.partition("#")
        parsed = urllib.parse.urlsplit(url)
        if not parsed.hostname:
            raise ValueError(f"no host in DoH URL {spec!r}")
        ip = bootstrap or (parsed.hostname if is_ip(parsed.hostname) else None)
        if ip is not None and not is_ip(ip):
            raise ValueError(f"bootstrap address {ip!r} is not an IP address")
        return Resolver("doh", ip, parsed.port or 443, url=url, control=control)
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in _SPEC_TRANSPORTS:
        raise ValueError(f"resolver {spec!r} is not udp:IP, tcp:IP, tls:IP or a DoH URL")
    transport = _SPEC_TRANSPORTS[scheme]
    address, _, name = rest.partition("#")
    ip, port = _split(address, _DEFAULT_PORTS[transport])
    return Resolver(transport, ip, port, server_name=name or None, control=control)


def system_resolver(setting: str | None = None, *, resolv_conf: Path = RESOLV_CONF) -> Resolver:
    """The system resolver: ``setting`` (``IP``, ``IP:PORT``, or a path to a resolv.conf file) or
    the first nameserver of ``resolv_conf``.

    Raises ValueError when neither names one (a configuration error, not a network failure).
    """
    if setting is not None and "/" in setting:
        resolv_conf, setting = Path(setting), None
    if setting is None:
        setting = _first_nameserver(resolv_conf)
        if setting is None:
            raise ValueError(f"no nameserver in {resolv_conf}")
    ip, port = _split(setting, 53)
    return Resolver("system", ip, port)


def _first_nameserver(resolv_conf: Path) -> str | None:
    """The first ``nameserver`` address of a resolv.conf file (None when there is none)."""
    try:
        text = resolv_conf.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return fields[1].split("%", 1)[0]  # drop an IPv6 zone index
    return None


def _split(address: str, default_port: int) -> tuple[str, int]:
    """``IP``, ``IPv4:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address -> (ip, port)."""
    if address.startswith("["):
        host, _, port = address[1:].partition("]")
        port = port.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""
    if not is_ip(host):
        raise ValueError(f"{host!r} is not an IP address")
    return host, int(port) if port else default_port


def _join(ip: str, port: int, default_port: int) -> str:
    """The inverse of ``_split``: the port only when it is not the default."""
    if port == default_port:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
