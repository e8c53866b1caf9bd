"""Which address families a run measures: IPv4 always, IPv6 when this vantage has it.

Looked up once per run (``settings_for_run``): a route lookup towards a configured resolver's IPv6
address, or towards a public one when none is configured (nothing is sent).
"""

from __future__ import annotations

import dataclasses

from probe.flows.plan import MeasureSettings
from probe.net.family import ROUTE_PROBE, family_of, has_ipv6
from probe.steps.resolvers import parse_resolver

NO_IPV6 = "no IPv6 here: this vantage has no IPv6 route, so every endpoint was measured over IPv4"
IPV6_OFF = "IPv6 is switched off in the configuration: every endpoint was measured over IPv4"


def route_probe(settings: MeasureSettings) -> str:
    """The address whose route says whether this vantage has IPv6."""
    for spec in settings.control_resolvers:
        try:
            ip = parse_resolver(spec).ip
        except ValueError:
            continue
        if ip is not None and family_of(ip) == "ipv6":
            return ip
    return ROUTE_PROBE


def ipv6_enabled(settings: MeasureSettings) -> bool:
    """Whether to measure over IPv6: the setting when given, else a route lookup now."""
    if settings.ipv6 is not None:
        return settings.ipv6
    return has_ipv6(route_probe(settings))


def settings_for_run(settings: MeasureSettings) -> MeasureSettings:
    """``settings`` with ``ipv6`` decided (looked up once, for every endpoint of the run)."""
    return dataclasses.replace(settings, ipv6=ipv6_enabled(settings))
