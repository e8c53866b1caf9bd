"""DNS policy actions shared by the lab's name servers: which rule applies, and what it answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from censornet.policy import DnsRule, name_matches

RULE_TTL = 300
_RCODES = {
    "nxdomain": dns.rcode.NXDOMAIN,
    "servfail": dns.rcode.SERVFAIL,
    "refused": dns.rcode.REFUSED,
}


def query_name(query: dns.message.Message) -> str:
    """The question name of ``query`` without the trailing dot ("" without a question)."""
    if not query.question:
        return ""
    return query.question[0].name.to_text(omit_final_dot=True).lower()


def dns_rule(rules: tuple[DnsRule, ...], qname: str) -> DnsRule | None:
    """The first rule whose suffix covers ``qname``."""
    for rule in rules:
        if qname and name_matches(qname, rule.suffix):
            return rule
    return None


def response_with_addresses(
    query: dns.message.Message, addresses: tuple[str, ...], *, ttl: int
) -> dns.message.Message:
    """A NOERROR response giving ``addresses`` as A records (no answer for other query types)."""
    response = dns.message.make_response(query)
    question = query.question[0]
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and addresses:
        rrset = dns.rrset.from_text_list(
            question.name, ttl, dns.rdataclass.IN, dns.rdatatype.A, list(addresses)
        )
        response.answer.append(rrset)
    return response


def response_with_rcode(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    """An empty response with ``rcode``."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response


async def apply_rule(
    query: dns.message.Message,
    rule: DnsRule,
    resolve: Callable[[], Awaitable[dns.message.Message | None]],
) -> dns.message.Message | None:
    """Answer ``query`` as ``rule`` says, after its delay.

    ``answer`` with addresses replaces the A records; ``answer`` without addresses gives the real
    answer (from ``resolve``), only delayed. ``drop`` gives None: the server stays silent.
    """
    if rule.delay_ms:
        await asyncio.sleep(rule.delay_ms / 1000)
    if rule.action == "drop":
        return None
    if rule.action in _RCODES:
        return response_with_rcode(query, _RCODES[rule.action])
    if rule.answer:
        return response_with_addresses(query, rule.answer, ttl=RULE_TTL)
    return await resolve()
