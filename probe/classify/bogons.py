"""Bogons: addresses a public name should never resolve to.

Loopback, RFC 1918 private, carrier-grade NAT, link-local, unspecified, multicast, reserved and
the documentation ranges; for IPv6 also unique-local (fc00::/7), IPv4-mapped (::ffff:0:0/96),
discard-only (100::/64) and 2001:db8::/32. The benchmarking range 198.18.0.0/15 is deliberately
NOT a bogon here: the lab (and the contract's examples) use it for the platform's real servers. The
lab's IPv6 prefix ``LAB_PREFIX6`` (one /48 of unique-local space, fd00:198:18::/48, "198.18" in
IPv6) is carved out of fc00::/7 for the same reason; every other unique-local address is a bogon.
"""

from __future__ import annotations

import ipaddress

_BOGONS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


LAB_PREFIX6 = ipaddress.ip_network("fd00:198:18::/48")


def is_bogon(address: str) -> bool:
    """True when ``address`` is in a bogon range (or is not an address at all)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return True  # an IPv4 address dressed as IPv6 is never a public AAAA answer
    if ip in LAB_PREFIX6:
        return False
    return any(ip.version == net.version and ip in net for net in _BOGONS)
