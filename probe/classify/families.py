"""Address families: one endpoint's observations split into IPv4 and IPv6, and the two verdicts
joined into one.

An endpoint counts as measured over a family when a connection to one of its addresses in that
family was tried. Its DNS queries go with the family of their record type (A with IPv4, AAAA with
IPv6), connections, handshakes, fetches, transfers and packets with the family of their address;
queries for other names (the paired re-checks) go with both. The canaries and the control vantage
are split the same way, so each family is judged against controls that used that family.

The endpoint's verdict is the worse of the two (``probe.model.verdict.SEVERITY``); on a tie, the
IPv4 verdict's method. A family that says nothing about the endpoint (``inconclusive``, or
``outage.local``: nothing at all worked from here over that family) never overrides the other.
"""

from __future__ import annotations

from collections.abc import Mapping

from probe.model.measurement import Observations
from probe.model.methods import Method
from probe.model.verdict import SEVERITY, Family, FamilyVerdict, Verdict
from probe.net.family import NAMES, family_of

FAMILIES: tuple[Family, ...] = ("ipv4", "ipv6")
_QTYPE: dict[Family, str] = {"ipv4": "A", "ipv6": "AAAA"}


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
    )


def measured(obs: Observations) -> tuple[Family, ...]:
    """The families a connection was tried over, IPv4 first."""
    tried = {family_of(c.ip) for c in obs.tcp}
    return tuple(f for f in FAMILIES if f in tried)


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


def phrase(family: Family, verdict: Verdict) -> str:
    """``blocked over IPv4 (tls.reset)``."""
    method = f" ({verdict.method})" if verdict.method else ""
    return f"{verdict.kind} over {NAMES[family]}{method}"


def join(verdicts: Mapping[Family, Verdict]) -> Verdict:
    """One verdict for an endpoint measured over both families, with each family's own."""
    order = sorted(FAMILIES, key=lambda f: (_rank(verdicts[f]), FAMILIES.index(f)))
    chosen, other = order
    main = verdicts[chosen]
    summary = ", ".join(phrase(f, verdicts[f]) for f in FAMILIES)
    evidence = (
        summary,
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
        families={
            f: FamilyVerdict(kind=verdicts[f].kind, method=verdicts[f].method) for f in FAMILIES
        },
    )


def single(verdict: Verdict, family: Family, obs: Observations) -> Verdict:
    """``verdict`` of an endpoint measured over one family, with a line saying which and why."""
    if family == "ipv6":
        why = "no A record answered"
    elif any(family_of(a) == "ipv6" for q in obs.dns for a in q.addresses):
        why = "AAAA records answered, but this vantage has no IPv6"
    else:
        why = "no resolver answered an AAAA record for the name"
    line = f"measured over {NAMES[family]} only: {why}"
    return verdict.model_copy(update={"evidence": (*verdict.evidence, line)})
