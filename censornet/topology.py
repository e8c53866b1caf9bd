"""The mock censor network's address plan: namespaces, links, server addresses and DNS names.

This module is data only. Every address lives in 198.18.0.0/15 (RFC 2544 benchmarking range) and
exists only inside namespaces the lab creates. The lab is dual-stack: each IPv4 address has an IPv6
twin in the unique-local prefix fd00:198:18::/48 (``ipv6_of``: 198.18.A.B is fd00:198:18:A::B, a /24
becomes a /64), inside the same namespaces only. Namespace names are ``{prefix}-{role}``; the prefix
defaults to ``bplab`` and can be changed with ``BLOCKPROBE_LAB_PREFIX`` so that several labs can
coexist (each developer, each test session).

Shape::

    v1a ─┐                                     ┌─ servers (on inet's loopback)
    v1b ─┴─ isp1 (censor + resolver) ─┐        │
                                      ├─ inet ─┤
    v2a ─── isp2 (censor + resolver) ─┘        └─ ctrl (control vantage, uncensored)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_PREFIX = "bplab"
LAB_NETWORK = "198.18.0.0/15"
LAB_NETWORK6 = "fd00:198:18::/48"


def ipv6_of(address: str) -> str:
    """The IPv6 twin of a lab IPv4 address or /24 network: 198.18.100.10 -> fd00:198:18:100::10,
    198.18.11.0/24 -> fd00:198:18:11::/64."""
    ip, _, length = address.partition("/")
    octets = ip.split(".")
    if len(octets) != 4 or octets[:2] != ["198", "18"]:
        raise ValueError(f"{address!r} is not a lab IPv4 address")
    if length:
        return f"fd00:198:18:{octets[2]}::/{64 if int(length) >= 24 else 48}"
    return f"fd00:198:18:{octets[2]}::{octets[3]}"


def lab_prefix() -> str:
    """The namespace name prefix in force (``BLOCKPROBE_LAB_PREFIX`` or ``bplab``)."""
    prefix = os.environ.get("BLOCKPROBE_LAB_PREFIX", DEFAULT_PREFIX)
    if not prefix.replace("-", "").isalnum() or len(prefix) > 20:
        raise ValueError(f"BLOCKPROBE_LAB_PREFIX={prefix!r}: use up to 20 letters, digits or '-'")
    return prefix


@dataclass(frozen=True)
class Link:
    """A veth pair between two namespaces, each end with an address in a /24 or /30."""

    left: str
    left_if: str
    left_addr: str
    right: str
    right_if: str
    right_addr: str
    prefixlen: int


@dataclass(frozen=True)
class Isp:
    """An ISP network: a censor/router namespace with its own resolver and vantage points."""

    name: str
    resolver: str
    vantages: tuple[str, ...]


@dataclass(frozen=True)
class Vantage:
    """A vantage-point namespace: where a probe runs."""

    name: str
    address: str
    gateway: str
    isp: str | None  # None for the control vantage (no censor on its path)


# Namespace roles (the full name is f"{prefix}-{role}").
INET = "inet"
CTRL = "ctrl"
ISPS: tuple[Isp, ...] = (
    Isp(name="isp1", resolver="198.18.10.53", vantages=("v1a", "v1b")),
    Isp(name="isp2", resolver="198.18.20.53", vantages=("v2a",)),
)
VANTAGES: tuple[Vantage, ...] = (
    Vantage(name="v1a", address="198.18.11.2", gateway="198.18.11.1", isp="isp1"),
    Vantage(name="v1b", address="198.18.12.2", gateway="198.18.12.1", isp="isp1"),
    Vantage(name="v2a", address="198.18.21.2", gateway="198.18.21.1", isp="isp2"),
    Vantage(name="ctrl", address="198.18.3.2", gateway="198.18.3.1", isp=None),
)
ROLES: tuple[str, ...] = (INET, *(i.name for i in ISPS), *(v.name for v in VANTAGES))

LINKS: tuple[Link, ...] = (
    Link(INET, "to-isp1", "198.18.1.1", "isp1", "uplink", "198.18.1.2", 30),
    Link(INET, "to-isp2", "198.18.2.1", "isp2", "uplink", "198.18.2.2", 30),
    Link(INET, "to-ctrl", "198.18.3.1", CTRL, "uplink", "198.18.3.2", 30),
    Link("isp1", "to-v1a", "198.18.11.1", "v1a", "uplink", "198.18.11.2", 24),
    Link("isp1", "to-v1b", "198.18.12.1", "v1b", "uplink", "198.18.12.2", 24),
    Link("isp2", "to-v2a", "198.18.21.1", "v2a", "uplink", "198.18.21.2", 24),
)

# Routes inside inet towards the ISP and control networks (destination, gateway).
INET_ROUTES: tuple[tuple[str, str], ...] = (
    ("198.18.10.0/24", "198.18.1.2"),
    ("198.18.11.0/24", "198.18.1.2"),
    ("198.18.12.0/24", "198.18.1.2"),
    ("198.18.20.0/24", "198.18.2.2"),
    ("198.18.21.0/24", "198.18.2.2"),
)
# Each ISP's upstream gateway (in inet).
ISP_UPSTREAM: dict[str, str] = {"isp1": "198.18.1.1", "isp2": "198.18.2.1"}

# --- Servers (all in inet, on its loopback interface) -------------------------------------

X_IPS: tuple[str, ...] = ("198.18.100.10", "198.18.100.11")
X_MEDIA_IPS: tuple[str, ...] = ("198.18.100.20", "198.18.100.21")
X_CDN_ALT_IP = "198.18.100.12"  # serves X with a valid certificate; only "CDN" scenarios answer it
CANARY_IPS: tuple[str, ...] = ("198.18.101.10", "198.18.101.11")
BLOCKPAGE_IP = "198.18.102.10"
MITM_IP = "198.18.102.20"
AUTH_DNS_IP = "198.18.103.10"
CONTROL_RESOLVER_IP = "198.18.103.53"
CONTROL_RESOLVER_NAME = "dns.control.lab"
CONTROL_DOH_URL = f"https://{CONTROL_RESOLVER_NAME}/dns-query"
BLOCKPAGE_NAME = "warning.pta.lab"
HELPER_PORT = 8480  # control-vantage helper / collector in the ctrl namespace
LARGE_OBJECT_BYTES = 8 * 1024 * 1024  # every non-root GET path on a web server streams this much

# DNS names served by the lab's authoritative server -> A records (each with its AAAA twin).
ZONE: dict[str, tuple[str, ...]] = {
    # X / Twitter
    "x.com": X_IPS,
    "www.x.com": X_IPS,
    "api.x.com": X_IPS,
    "twitter.com": X_IPS,
    "www.twitter.com": X_IPS,
    "api.twitter.com": X_IPS,
    "t.co": X_IPS,
    "abs.twimg.com": X_MEDIA_IPS,
    "pbs.twimg.com": X_MEDIA_IPS,
    "video.twimg.com": X_MEDIA_IPS,
    # Other platforms share a server process but have their own addresses.
    "youtube.com": ("198.18.100.30",),
    "www.youtube.com": ("198.18.100.30",),
    "i.ytimg.com": ("198.18.100.31",),
    "facebook.com": ("198.18.100.40",),
    "www.facebook.com": ("198.18.100.40",),
    "static.xx.fbcdn.net": ("198.18.100.41",),
    "instagram.com": ("198.18.100.42",),
    "www.instagram.com": ("198.18.100.42",),
    "whatsapp.com": ("198.18.100.43",),
    "web.whatsapp.com": ("198.18.100.43",),
    "www.whatsapp.com": ("198.18.100.43",),
    "telegram.org": ("198.18.100.50",),
    "web.telegram.org": ("198.18.100.50",),
    "t.me": ("198.18.100.51",),
    "wikipedia.org": ("198.18.100.60",),
    "www.wikipedia.org": ("198.18.100.60",),
    "en.wikipedia.org": ("198.18.100.60",),
    "upload.wikimedia.org": ("198.18.100.61",),
    "tiktok.com": ("198.18.100.70",),
    "www.tiktok.com": ("198.18.100.70",),
    "signal.org": ("198.18.100.80",),
    "www.signal.org": ("198.18.100.80",),
    "updates.signal.org": ("198.18.100.80",),
    # Canaries: unrelated sites on the same paths.
    "example.org": (CANARY_IPS[0],),
    "www.example.org": (CANARY_IPS[0],),
    "example.com": (CANARY_IPS[1],),
    "www.example.com": (CANARY_IPS[1],),
    # Infrastructure
    BLOCKPAGE_NAME: (BLOCKPAGE_IP,),
    CONTROL_RESOLVER_NAME: (CONTROL_RESOLVER_IP,),
    "helper.control.lab": (VANTAGES[-1].address,),
}

# Domain groups that share a certificate and a page title (a "site").
SITES: dict[str, tuple[str, ...]] = {
    "x": (
        "x.com",
        "www.x.com",
        "api.x.com",
        "twitter.com",
        "www.twitter.com",
        "api.twitter.com",
        "t.co",
    ),
    "twimg": ("abs.twimg.com", "pbs.twimg.com", "video.twimg.com"),
    "youtube": ("youtube.com", "www.youtube.com", "i.ytimg.com"),
    "facebook": ("facebook.com", "www.facebook.com", "static.xx.fbcdn.net"),
    "instagram": ("instagram.com", "www.instagram.com"),
    "whatsapp": ("whatsapp.com", "web.whatsapp.com", "www.whatsapp.com"),
    "telegram": ("telegram.org", "web.telegram.org", "t.me"),
    "wikipedia": ("wikipedia.org", "www.wikipedia.org", "en.wikipedia.org", "upload.wikimedia.org"),
    "tiktok": ("tiktok.com", "www.tiktok.com"),
    "signal": ("signal.org", "www.signal.org", "updates.signal.org"),
    "example": ("example.org", "www.example.org", "example.com", "www.example.com"),
}
CANARY_NAMES: tuple[str, ...] = ("example.org", "example.com")
# Sites that also answer HTTP/3 over QUIC on UDP 443 (censornet.servers.h3origin), as the real
# ones do; X does not (its platform file marks no endpoint http3).
HTTP3_SITES: tuple[str, ...] = ("youtube", "facebook", "instagram", "whatsapp")


def server_ips() -> tuple[str, ...]:
    """Every address served on inet's loopback interface, sorted."""
    ips = {ip for answers in ZONE.values() for ip in answers if ip.startswith("198.18.10")}
    ips.update({X_CDN_ALT_IP, BLOCKPAGE_IP, MITM_IP, AUTH_DNS_IP, CONTROL_RESOLVER_IP})
    return tuple(sorted(ips, key=lambda ip: tuple(int(p) for p in ip.split("."))))


def isp(name: str) -> Isp:
    """The ISP called ``name`` (raises KeyError naming the known ones)."""
    for candidate in ISPS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown ISP {name!r}; known: {', '.join(i.name for i in ISPS)}")


def vantage(name: str) -> Vantage:
    """The vantage point called ``name`` (raises KeyError naming the known ones)."""
    for candidate in VANTAGES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown vantage {name!r}; known: {', '.join(v.name for v in VANTAGES)}")
