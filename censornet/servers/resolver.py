"""A forwarding resolver: asks the authoritative server over the wire, then applies policy.

Used for each ISP's resolver (``resolver`` rules) and the uncensored control resolver
(``control_resolver`` rules). The upstream rcode passes through, so a broken authoritative server
shows as SERVFAIL everywhere; an upstream that does not answer also gives SERVFAIL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from censornet.policy import DnsRule
from censornet.servers.dnspolicy import apply_rule, dns_rule, query_name, response_with_rcode

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 2.0


class ForwardingResolver:
    """Resolves every query through ``upstream:port``, then applies ``rules()``."""

    def __init__(
        self,
        upstream: str,
        rules: Callable[[], tuple[DnsRule, ...]],
        *,
        port: int = 53,
        timeout: float = UPSTREAM_TIMEOUT,
        recursive: bool = False,
    ) -> None:
        self.upstream = upstream
        self.port = port
        self.recursive = recursive  # ask with RD (the upstream is a resolver, not authoritative)
        self.timeout = timeout
        self._rules = rules

    async def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        if len(query.question) != 1:
            return response_with_rcode(query, dns.rcode.FORMERR)
        rule = dns_rule(self._rules(), query_name(query))
        if rule is None:
            response: dns.message.Message | None = await self.forward(query)
        else:
            response = await apply_rule(query, rule, lambda: self.forward(query))
        if response is not None:
            response.flags |= dns.flags.RA
            response.flags &= ~dns.flags.AA
        return response

    async def forward(self, query: dns.message.Message) -> dns.message.Message:
        """The upstream's answer to ``query``'s question, as a response to ``query``."""
        question = query.question[0]
        upstream_query = dns.message.make_query(question.name, question.rdtype, question.rdclass)
        if not self.recursive:
            upstream_query.flags &= ~dns.flags.RD
        try:
            upstream = await dns.asyncquery.udp(
                upstream_query, self.upstream, timeout=self.timeout, port=self.port
            )
            if upstream.flags & dns.flags.TC:
                upstream = await dns.asyncquery.tcp(
                    upstream_query, self.upstream, timeout=self.timeout, port=self.port
                )
        except (dns.exception.DNSException, OSError) as exc:
            log.info(
                "upstream %s:%s failed for %s: %r", self.upstream, self.port, question.name, exc
            )
            return response_with_rcode(query, dns.rcode.SERVFAIL)
        response = dns.message.make_response(query)
        response.set_rcode(upstream.rcode())
        response.answer = upstream.answer
        response.authority = upstream.authority
        return response
