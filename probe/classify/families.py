"""Address families: one endpoint's observations split into IPv4 and IPv6, and the two verdicts
joined into one.

An endpoint counts as measured over a family when a connection to one of its addresses in that
family was tried, unless this vantage has no route for it (every such connection unreachable, and no
canary connected over it). Its DNS queries go with the family of their record type (A with IPv4,
AAAA with IPv6), connections, handshakes, fetches, transfers and packets with the family of their
address; queries for other names (the paired re-checks) go with both. A system resolver that answers
A but no AAAA (``aaaa_withheld``) is left out of the IPv6 judgement: its clients simply use IPv4.
The canaries and the control vantage are split the same way, so each family is judged against
controls that used that family.

The endpoint's verdict is the worse of the two (``probe.model.verdict.SEVERITY``); on a tie, the
IPv4 verdict's method. A family that says nothing about the endpoint (``inconclusive``, or
``outage.local``: nothing at all worked from here over that family) never overrides the other.
"""

from __future__ import annotations

from collections.abc import Mapping

from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.methods import Method
from probe.model.observations import DNSObservation
from probe.model.verdict import SEVERITY, Family, FamilyVerdict, Verdict
from probe.net.family import NAMES, family_of

FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
_QTYPE: dict[Family, str] = {"ipv4": "A", "ipv6": "AAAA"}
_UNREACHABLE = frozenset({Failure.NETWORK_UNREACHABLE, Failure.HOST_UNREACHABLE})


def _in(address: str | None, family: Family) -> bool:
    return address is None or family_of(address) == family


def split(obs: Observations, family: Family, domain: str | None = None) -> Observations:
    """The part of ``obs`` that used ``family`` (queries for names other than ``domain`` kept)."""
    name = (domain or "").lower().rstrip(".")
    return Observations(
        dns=tuple(
            q
            for q in obs.dns
            if q.qtype == _QTYPE[family] or (domain and q.domain.lower().rstrip(".") != name)
        ),
        tcp=tuple(c for c in obs.tcp if _in(c.ip, family)),
        tls=tuple(h for h in obs.tls if _in(h.ip, family)),
        http=tuple(r for r in obs.http if _in(r.ip, family)),
        throughput=tuple(t for t in obs.throughput if _in(t.ip, family)),
        packets=tuple(p for p in obs.packets if _in(p.ip, family)),
        quic=tuple(q for q in obs.quic if _in(q.ip, family)),
    )


WITHHELD = (
    "the system resolver answered A but no AAAA record for the name (clients here use IPv4): "
    "IPv6 was measured at the control's addresses, and its missing AAAA is no block"
)


def aaaa_withheld(obs: Observations, domain: str) -> bool:
    """Whether the system resolver answered the name's A query with addresses and every AAAA
    query with no record: a network (or CDN node) without IPv6 for the name, which a client
    meets by using IPv4; not a block of the name."""
    name = domain.lower().rstrip(".")
    mine = [q for q in obs.dns if not q.control and q.domain.lower().rstrip(".") == name]
    a = [q for q in mine if q.qtype == "A"]
    aaaa = [q for q in mine if q.qtype == "AAAA"]
    return (
        any(q.failure is None and q.addresses for q in a)
        and bool(aaaa)
        and all(q.failure is Failure.DNS_NO_ANSWER for q in aaaa)
    )


def without_system_aaaa(obs: Observations) -> tuple[DNSObservation, ...]:
    """``obs``'s DNS queries less the system resolver's AAAA ones."""
    return tuple(q for q in obs.dns if q.control or q.qtype != "AAAA")


def noted(verdict: Verdict, line: str) -> Verdict:
    """``verdict`` with one more evidence line."""
    return verdict.model_copy(update={"evidence": (*verdict.evidence, line)})


def measured(
    obs: Observations, canaries: Mapping[str, Observations] | None = None
) -> tuple[Family, ...]:
    """The families a connection was tried over, IPv4 first, leaving out one this vantage has
    no route for (``no_route``)."""
    tried = {family_of(c.ip) for c in obs.tcp}
    return tuple(f for f in FAMILIES if f in tried and not no_route(obs, f, canaries or {}))


def no_route(obs: Observations, family: Family, canaries: Mapping[str, Observations]) -> bool:
    """Whether every connection over ``family`` failed as unreachable (how a host without a
    route for the family fails) and no canary connected over it: the vantage lacks the family."""
    connects = [c for c in obs.tcp if family_of(c.ip) == family]
    if not connects or any(c.failure not in _UNREACHABLE for c in connects):
        return False
    return not any(
        c.failure is None and family_of(c.ip) == family for o in canaries.values() for c in o.tcp
    )


def split_canaries(canaries: Mapping[str, Observations], family: Family) -> dict[str, Observations]:
    """Each canary's observations over ``family``; a canary not measured over it is left out."""
    found: dict[str, Observations] = {}
    for key, obs in canaries.items():
        part = split(obs, family)
        if part.tcp or part.dns:
            found[key] = part
    return found


def _silent(verdict: Verdict) -> bool:
    """A verdict that says nothing about the endpoint itself."""
    return verdict.kind == "inconclusive" or verdict.method == Method.OUTAGE_LOCAL


def _rank(verdict: Verdict) -> int:
    return len(SEVERITY) if _silent(verdict) else SEVERITY.index(verdict.kind)


def phrase(family: Family, verdict: Verdict | FamilyVerdict) -> str:
    """``blocked over IPv4 (tls.reset)``."""
    method = f" ({verdict.method})" if verdict.method else ""
    return f"{verdict.kind} over {NAMES[family]}{method}"


def summary(verdicts: Mapping[Family, Verdict | FamilyVerdict]) -> str:
    """The first evidence line of a joined verdict: each family's verdict and method."""
    return ", ".join(phrase(f, verdicts[f]) for f in FAMILIES)


def join(verdicts: Mapping[Family, Verdict]) -> Verdict:
    """One verdict for an endpoint measured over both families, with each family's own."""
    order = sorted(FAMILIES, key=lambda f: (_rank(verdicts[f]), FAMILIES.index(f)))
    chosen, other = order
    main = verdicts[chosen]
    evidence = (
        summary(verdicts),
        *(f"{NAMES[chosen]}: {line}" for line in main.evidence),
        *(f"{NAMES[other]}: {line}" for line in verdicts[other].evidence),
    )
    return Verdict(
        kind=main.kind,
        method=main.method,
        confidence=main.confidence,
        evidence=evidence,
        throughput=main.throughput or verdicts[other].throughput,
        throughput_up=main.throughput_up or verdicts[other].throughput_up,
        http3=verdicts["ipv4"].http3 or verdicts["ipv6"].http3,
        families={
            f: FamilyVerdict(kind=verdicts[f].kind, method=verdicts[f].method) for f in FAMILIES
        },
    )


def single(verdict: Verdict, family: Family, obs: Observations) -> Verdict:
    """``verdict`` of an endpoint measured over one family, with a line saying which and why."""
    other: Family = "ipv6" if family == "ipv4" else "ipv4"
    if any(family_of(c.ip) == other for c in obs.tcp):
        why = f"{NAMES[other]} unreachable from here (no route)"
    elif family == "ipv6":
        why = "no A record answered"
    elif any(family_of(a) == "ipv6" for q in obs.dns for a in q.addresses):
        why = "AAAA records answered, but this vantage has no IPv6"
    else:
        why = "no resolver answered an AAAA record for the name"
    return noted(verdict, f"measured over {NAMES[family]} only: {why}")
