"""A scenario's iptables rules in their IPv6 form, for ip6tables-restore.

The lab is dual-stack, and a censor's rule applies to both families unless the scenario says
otherwise: each rule is rewritten with the IPv6 twin of every lab address
(``topology.ipv6_of``) and the ICMPv6 names of its ICMP matches and rejects. A rule whose
mechanism exists only for IPv4 in the lab has no IPv6 form (``NoIpv6Form``): ``-m u32`` offsets
into the IPv4 header, and the lab's transparent proxies, interception server and packet-queue
injectors (``REDIRECT``, ``DNAT``, ``NFQUEUE``) are IPv4 programs.
"""

from __future__ import annotations

import re

from censornet import topology

_LAB_V4 = re.compile(r"198\.18\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?")
_IPV4_ONLY = (
    ("-m u32", "u32 offsets into the IPv4 header"),
    ("REDIRECT", "the lab's transparent proxies listen on IPv4 only"),
    ("DNAT", "the lab's interception server listens on IPv4 only"),
    ("NFQUEUE", "the lab's packet-queue injectors read IPv4 only"),
)
_WORDS = {
    "icmp-port-unreachable": "icmp6-port-unreachable",
    "icmp-host-unreachable": "icmp6-addr-unreachable",
    "icmp-net-unreachable": "icmp6-no-route",
    "icmp-admin-prohibited": "icmp6-adm-prohibited",
    "icmp-host-prohibited": "icmp6-adm-prohibited",
    "icmp-net-prohibited": "icmp6-adm-prohibited",
    "icmp-proto-unreachable": "icmp6-port-unreachable",
    "-p icmp": "-p ipv6-icmp",
    "--icmp-type": "--icmpv6-type",
    "-m ttl --ttl-gt": "-m hl --hl-gt",
    "-m ttl --ttl-lt": "-m hl --hl-lt",
    "-m ttl --ttl-eq": "-m hl --hl-eq",
}


class NoIpv6Form(ValueError):
    """The rule's mechanism exists only for IPv4 in the lab."""


def ipv6_rule(rule: str) -> str:
    """``rule`` (an iptables-restore line, placeholders already replaced) for ip6tables."""
    for marker, why in _IPV4_ONLY:
        if marker in rule:
            raise NoIpv6Form(f"{rule!r}: {why}")
    for old, new in _WORDS.items():
        rule = rule.replace(old, new)
    return _LAB_V4.sub(lambda m: _twin(m[0]), rule)


def _twin(address: str) -> str:
    ip, _, length = address.partition("/")
    if length and int(length) < 32:
        return topology.ipv6_of(f"{ip}/{length}")
    return topology.ipv6_of(ip) + ("/128" if length else "")
