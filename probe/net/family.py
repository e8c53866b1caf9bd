"""Address families: which one an address belongs to, and whether this vantage has IPv6 at all.

``has_ipv6`` asks the kernel for a route: a UDP socket ``connect`` picks a source address and sends
nothing. A vantage has IPv6 when that source is a routable address (not loopback, link-local or
unspecified).
"""

from __future__ import annotations

import ipaddress
import socket

from probe.model.verdict import Family

# Asked only for a route (nothing is sent): a public resolver's address stands for "the internet".
ROUTE_PROBE = "2001:4860:4860::8888"
NAMES: dict[Family, str] = {"ipv4": "IPv4", "ipv6": "IPv6"}


def family_of(address: str) -> Family | None:
    """``ipv4`` or ``ipv6`` for an address (an IPv4-mapped IPv6 address is IPv4); None otherwise."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return "ipv6"
    return "ipv4"


def has_ipv6(towards: str = ROUTE_PROBE) -> bool:
    """Whether this host has a route with a usable source address to ``towards`` (IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect((towards, 53))
            source = ipaddress.IPv6Address(sock.getsockname()[0].split("%", 1)[0])
    except (OSError, ValueError):
        return False
    return not (source.is_loopback or source.is_link_local or source.is_unspecified)
