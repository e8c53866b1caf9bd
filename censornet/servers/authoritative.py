"""The lab's authoritative name server: A records from ``topology.ZONE``, under policy.

Known names answer A (TTL 300, AA) and NOERROR/no data for other types; unknown names NXDOMAIN.
The ``authoritative`` policy rules break it for chosen names (a platform's DNS outage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dns.flags
import dns.message
import dns.rcode

from censornet.policy import DnsRule
from censornet.servers.dnspolicy import (
    apply_rule,
    dns_rule,
    query_name,
    response_with_addresses,
    response_with_rcode,
)

ZONE_TTL = 300


def answer_from_zone(
    query: dns.message.Message, zone: Mapping[str, tuple[str, ...]]
) -> dns.message.Message:
    """The authoritative answer to ``query`` from ``zone`` (name -> A records)."""
    if len(query.question) != 1:
        return response_with_rcode(query, dns.rcode.FORMERR)
    name = query_name(query)
    if name not in zone:
        response = response_with_rcode(query, dns.rcode.NXDOMAIN)
    else:
        response = response_with_addresses(query, zone[name], ttl=ZONE_TTL)
    response.flags |= dns.flags.AA
    response.flags &= ~dns.flags.RA
    return response


class Authoritative:
    """Answers from a zone, applying the rules ``rules()`` returns at query time."""

    def __init__(
        self,
        zone: Mapping[str, tuple[str, ...]],
        rules: Callable[[], tuple[DnsRule, ...]],
    ) -> None:
        self._zone = zone
        self._rules = rules

    async def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        rule = dns_rule(self._rules(), query_name(query))
        if rule is None or len(query.question) != 1:
            return answer_from_zone(query, self._zone)

        async def zone_answer() -> dns.message.Message:
            return answer_from_zone(query, self._zone)

        response = await apply_rule(query, rule, zone_answer)
        if response is not None:
            response.flags |= dns.flags.AA
        return response
