"""Context: one endpoint's observations with its controls, and the facts the rules share.

The controls are the canaries (unrelated sites on the same path), the local control
observations (control resolver, benign SNI to the same IP, control transfer, all marked
``control=True``) and the control vantage (the same endpoint measured from outside). Each counts
as working when it shows the path carries the protocol, no more: a canary by a TCP connect, the
control resolver by an answer with addresses, the benign SNI by any TLS answer from the server (a
certificate for any name, valid or not, or an alert), the control transfer by moving bytes, the
control vantage by reaching the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from probe.flows.plan import EndpointPlan
from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.observations import DNSObservation, HTTPObservation, TLSHandshakeObservation

CERT_FAILURES = frozenset(
    {Failure.SSL_INVALID_HOSTNAME, Failure.SSL_UNKNOWN_AUTHORITY, Failure.SSL_INVALID_CERTIFICATE}
)


def tls_failure(handshake: TLSHandshakeObservation) -> Failure | None:
    """The handshake's failure, counting a completed handshake with an invalid certificate."""
    if handshake.failure is None and handshake.cert_valid is False:
        return Failure.SSL_INVALID_CERTIFICATE
    return handshake.failure


def answered(response: HTTPObservation) -> bool:
    """True when the fetch got an HTTP response (whatever its status)."""
    return response.failure is None and response.status is not None


def reached(obs: Observations) -> bool:
    """True when something beyond DNS worked: a connect, a handshake or an HTTP response."""
    return (
        any(c.failure is None for c in obs.tcp)
        or any(tls_failure(h) is None for h in obs.tls if not h.control)
        or any(answered(r) for r in obs.http)
    )


def _resolver_answered(query: DNSObservation) -> bool:
    """True when the control resolver answered: addresses, or "no such name" (an answer too)."""
    if query.failure is None:
        return bool(query.addresses)
    return query.failure in (Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER)


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (empty for a relative URL)."""
    return (urlsplit(url).hostname or "").lower()


@dataclass(frozen=True)
class Context:
    """Everything ``classify`` was given for one endpoint."""

    plan: EndpointPlan
    local: Observations
    control: Observations | None
    canaries: Mapping[str, Observations]
    one_shot: bool = False  # made elsewhere with one try per step (OONI): see ``finding.ONE_TRY``

    @property
    def https(self) -> bool:
        """True for an https:// endpoint."""
        return urlsplit(self.plan.url).scheme == "https"

    @property
    def port(self) -> int:
        """The endpoint's TCP port."""
        return urlsplit(self.plan.url).port or (443 if self.https else 80)

    def in_platform(self, host: str) -> bool:
        """True when ``host`` is one of the platform's domains or a subdomain of one."""
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.plan.platform_domains)

    def _for_domain(self, queries: tuple[DNSObservation, ...]) -> tuple[DNSObservation, ...]:
        name = self.plan.domain.lower().rstrip(".")
        return tuple(q for q in queries if q.domain.lower().rstrip(".") == name)

    @property
    def system_dns(self) -> tuple[DNSObservation, ...]:
        """This vantage's queries for the endpoint's name through the system resolver."""
        return tuple(q for q in self._for_domain(self.local.dns) if not q.control)

    @property
    def resolver_dns(self) -> tuple[DNSObservation, ...]:
        """This vantage's queries for the endpoint's name through the control resolver."""
        return tuple(q for q in self._for_domain(self.local.dns) if q.control)

    @property
    def vantage_dns(self) -> tuple[DNSObservation, ...]:
        """The control vantage's queries for the endpoint's name."""
        return self._for_domain(self.control.dns) if self.control is not None else ()

    @property
    def control_addresses(self) -> frozenset[str]:
        """The addresses the control resolver and the control vantage got for the name."""
        queries = (*self.resolver_dns, *self.vantage_dns)
        return frozenset(a for q in queries if q.failure is None for a in q.addresses)

    @property
    def canary_dns(self) -> tuple[DNSObservation, ...]:
        """The canaries' queries through the system resolver (the same one as the endpoint's)."""
        return tuple(q for c in self.canaries.values() for q in c.dns if not q.control)

    @property
    def other_names_dns(self) -> tuple[DNSObservation, ...]:
        """Queries for other names through the system resolver: canaries' and re-check pairs."""
        paired = (q for q in self.local.dns if not q.control and q.domain != self.plan.domain)
        return (*self.canary_dns, *paired)

    @property
    def canary_reached(self) -> bool:
        """True when some canary worked through this path."""
        return any(reached(c) for c in self.canaries.values())

    @property
    def canary_answered(self) -> bool:
        """True when some canary answered over HTTP through this path."""
        return any(answered(r) for c in self.canaries.values() for r in c.http)

    @property
    def vantage_reached(self) -> bool:
        """True when the control vantage reached the endpoint."""
        return self.control is not None and reached(self.control)

    @property
    def vantage_page(self) -> HTTPObservation | None:
        """The control vantage's last HTTP response for the endpoint, if it got one."""
        pages = [r for r in self.control.http if answered(r)] if self.control is not None else []
        return pages[-1] if pages else None

    @property
    def local_controls(self) -> tuple[bool, ...]:
        """One entry per local control observation: did it work?"""
        return (
            *(_resolver_answered(q) for q in self.local.dns if q.control),
            *(h.server_answered for h in self.local.tls if h.control),
            *(t.bytes > 0 for t in self.local.throughput if t.control),
        )

    @property
    def any_control_worked(self) -> bool:
        """True when at least one control worked: the floor for ever calling a block."""
        return self.canary_reached or any(self.local_controls) or self.vantage_reached
