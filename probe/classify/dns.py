"""DNS rules: error answers, bogons, spoofed and injected answers, and ``outage.dns``.

The system resolver's answers for the endpoint's name are judged against the control resolver
(``control=True``, possibly DoH) and the control vantage's answers, and against the canary names
resolved through the same system resolver.
"""

from __future__ import annotations

from probe.classify.bogons import is_bogon
from probe.classify.context import CERT_FAILURES, Context, answered, tls_failure
from probe.classify.finding import ONE_TRY, ONE_TRY_NOTE, Finding, describe, tries_phrase
from probe.classify.tries import Tries, settle
from probe.fingerprints.blockpages import differences, dns_fingerprint, fingerprint
from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.observations import DNSObservation

METHODS: dict[Failure, Method] = {
    Failure.DNS_NXDOMAIN: Method.DNS_NXDOMAIN,
    Failure.DNS_NO_ANSWER: Method.DNS_NXDOMAIN,  # NODATA: "no such address" without the rcode
    Failure.DNS_SERVFAIL: Method.DNS_SERVFAIL,
    Failure.DNS_REFUSED: Method.DNS_REFUSED,
    Failure.TIMEOUT: Method.DNS_TIMEOUT,
}
# Failures that are a resolver's answer about the name (it was reachable and said no).
NAME_FAILURES = frozenset(
    {Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER, Failure.DNS_SERVFAIL, Failure.DNS_REFUSED}
)
# Answers that say the name does not exist (as opposed to a resolver that could not answer).
NO_SUCH_NAME = frozenset({Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER})
# Error answers that can conclude from one try: a resolver's deliberate "no" (SERVFAIL is also
# what an overloaded or broken resolver says).
ONE_TRY_ANSWERS = frozenset({Failure.DNS_NXDOMAIN, Failure.DNS_NO_ANSWER, Failure.DNS_REFUSED})


def _listing(addresses: frozenset[str] | set[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(addresses)) or "no address"


def check(ctx: Context) -> Finding | None:
    """Judge the system resolver's answers for the endpoint's name."""
    system = ctx.system_dns
    if not system:
        return None
    injected = _injection(ctx, system)
    if injected is not None:
        return injected
    # AAAA queries often legitimately get no answer: judge failures on the A queries.
    tries = settle([q.failure for q in [q for q in system if q.qtype == "A"] or system])
    if not tries.works:
        return _failed(ctx, system[0], tries)
    good = [q for q in system if q.failure is None]
    tampered = _bogon(ctx, good) or _known(ctx, good) or _spoofed(ctx, good) or _ghost(ctx, good)
    if tampered is not None:
        return tampered
    if tries.outcome == "flaky":
        line = (
            f"system resolver: {ctx.plan.domain} {describe(tries.failure or Failure.UNKNOWN)} "
            f"{tries_phrase(tries.failed, tries.count)}, the retry answered"
        )
        return Finding("reachable", None, 0.7, (line,))
    return None


def _failed(ctx: Context, first: DNSObservation, tries: Tries) -> Finding:
    failure = tries.failure or Failure.UNKNOWN
    line = (
        f"{first.resolver}: {ctx.plan.domain} {describe(failure)} "
        f"{tries_phrase(tries.failed, tries.count)}"
    )
    good = ctx.control_addresses
    canary = ctx.canary_dns
    if good:
        control_line = f"control resolver/vantage answered {_listing(good)}"
        if canary and all(q.failure is not None for q in canary):
            why = "the same resolver fails for the canary names too: a broken resolver"
            return Finding("inconclusive", None, 0.5, (line, control_line, why))
        method = METHODS.get(failure)
        if method is None:
            return Finding("inconclusive", None, 0.4, (line, control_line))
        canary_ok = [q.domain for q in canary if q.failure is None]
        if method == Method.DNS_TIMEOUT and not canary_ok:
            why = "no other name was resolved through the same resolver to compare"
            return Finding("inconclusive", None, 0.4, (line, control_line, why))
        lost = [q for q in ctx.other_names_dns if q.failure is Failure.TIMEOUT]
        if method == Method.DNS_TIMEOUT and lost:
            names = ", ".join(sorted({q.domain for q in lost}))
            why = (
                f"the same resolver also dropped queries for {names}: "
                "loss or a flapping resolver, not a drop of this name"
            )
            return Finding("inconclusive", None, 0.5, (line, control_line, why))
        if tries.outcome == "once":
            if ctx.one_shot and failure in ONE_TRY_ANSWERS:
                return Finding("blocked", method, ONE_TRY, (line, control_line, ONE_TRY_NOTE))
            why = "failed once and was not retried: not enough to call a block"
            return Finding("inconclusive", None, 0.4, (line, control_line, why))
        evidence = [line, control_line]
        if canary_ok:
            evidence.append(f"same resolver answered {', '.join(sorted(set(canary_ok)))}")
        agrees = any(q.failure is None for q in ctx.vantage_dns)
        return Finding("blocked", method, 0.95 if agrees else 0.9, tuple(evidence))
    said_no = [q for q in ctx.resolver_dns if q.failure in NAME_FAILURES]
    vantage = ctx.vantage_dns
    vantage_fails = bool(vantage) and all(q.failure is not None for q in vantage)
    if said_no or vantage_fails:
        evidence = [line]
        evidence += [f"{q.resolver}: {describe(q.failure or Failure.UNKNOWN)}" for q in said_no[:1]]
        if vantage_fails:
            fail = vantage[0].failure or Failure.UNKNOWN
            evidence.append(f"control vantage: {ctx.plan.domain} {describe(fail)}")
        confidence = 0.9 if said_no and vantage_fails else 0.8
        return Finding("outage", Method.OUTAGE_DNS, confidence, tuple(evidence))
    why = "no control resolver or control vantage answered for the name"
    return Finding("inconclusive", None, 0.4, (line, why))


def _injection(ctx: Context, system: tuple[DNSObservation, ...]) -> Finding | None:
    conflicts = [
        (q, late) for q in system for late in q.late_answers if set(late) != set(q.addresses)
    ]
    if not conflicts:
        return None
    query, late = conflicts[0]
    line = (
        f"{1 + len(query.late_answers)} responses to one {query.qtype} query for {query.domain} "
        f"via {query.resolver}: {_listing(query.addresses)} then {_listing(late)}"
    )
    good = ctx.control_addresses
    if not good:
        why = "no control answer to tell the forged response from the real one"
        return Finding("inconclusive", None, 0.5, (line, why))
    seen = {a for q, late in conflicts for a in (*q.addresses, *late)}
    forged = seen - good
    control_line = f"control resolver/vantage answered {_listing(good)}"
    if not forged:
        why = "every response matches the control's answers: duplicates, not injection"
        return Finding("reachable", None, 0.8, (line, why))
    confidence = 0.9 if seen & good else 0.75
    if len(conflicts) > 1:
        confidence += 0.05
    evidence = (line, f"not in the control's answers: {_listing(forged)}", control_line)
    return Finding("blocked", Method.DNS_INJECTED, confidence, evidence)


def _bogon(ctx: Context, good: list[DNSObservation]) -> Finding | None:
    with_addresses = [q for q in good if q.addresses]
    bogus = [q for q in with_addresses if any(is_bogon(a) for a in q.addresses)]
    if not bogus or len(bogus) < len(with_addresses):
        return None  # no bogon, or mixed with real answers: not this rule's call
    found = {a for q in bogus for a in q.addresses if is_bogon(a)}
    line = f"{bogus[0].resolver} answered {ctx.plan.domain} with {_listing(found)} (bogon)"
    control = ctx.control_addresses
    if found & control:
        why = "the control answers the same bogon: the name really points there, not tampering"
        return Finding("reachable", None, 0.6, (line, why))
    if control:
        control_line = f"control resolver/vantage answered {_listing(control)}"
        return Finding("blocked", Method.DNS_BOGON, 0.9, (line, control_line))
    return Finding("blocked", Method.DNS_BOGON, 0.75, (line, "no control answer, but a bogon"))


def _known(ctx: Context, good: list[DNSObservation]) -> Finding | None:
    """Every address answered is a known censor answer (a DNS fingerprint) the control lacks."""
    addresses = {a for q in good for a in q.addresses} - ctx.control_addresses
    hits = {a: fp for a in sorted(addresses) if (fp := dns_fingerprint(a)) is not None}
    if not hits or len(hits) < len({a for q in good for a in q.addresses}):
        return None
    address, fp = next(iter(hits.items()))
    where = f", seen in {', '.join(fp.countries)}" if fp.countries else ""
    line = (
        f"{good[0].resolver} answered {ctx.plan.domain} with {address}: DNS fingerprint "
        f"{fp.name} (a known censor answer{where})"
    )
    control = ctx.control_addresses
    if control:
        control_line = f"control resolver/vantage answered {_listing(control)}"
        return Finding("blocked", Method.DNS_SPOOFED, 0.95, (line, control_line))
    return Finding("blocked", Method.DNS_SPOOFED, 0.85, (line, "no control answer to compare with"))


def _ghost(ctx: Context, good: list[DNSObservation]) -> Finding | None:
    """An answer for a name the controls say does not exist."""
    addresses = {a for q in good for a in q.addresses}
    if not addresses or ctx.control_addresses:
        return None
    said_no = [q for q in ctx.resolver_dns if q.failure in NO_SUCH_NAME]
    vantage = ctx.vantage_dns
    vantage_no = bool(vantage) and all(q.failure in NO_SUCH_NAME for q in vantage)
    if not said_no and not vantage_no:
        return None
    head = f"{good[0].resolver} answered {ctx.plan.domain} with {_listing(addresses)}"
    controls = [f"{q.resolver}: {describe(q.failure or Failure.UNKNOWN)}" for q in said_no[:1]]
    if vantage_no:
        controls.append(f"control vantage: {describe(vantage[0].failure or Failure.UNKNOWN)}")
    proofs = {ip: _proof(ctx, ip) for ip in sorted(addresses)}
    valid = [ip for ip, proof in proofs.items() if proof is not None and proof[0] == "valid"]
    if valid:
        why = (
            f"{', '.join(valid)} serves a valid certificate for {ctx.plan.domain}: a name that "
            "exists only on this network, not tampering"
        )
        return Finding("reachable", None, 0.6, (head, *controls, why))
    why = "an answer for a name that the controls say does not exist"
    confidence = 0.85 if said_no and vantage_no else 0.75
    return Finding("blocked", Method.DNS_SPOOFED, confidence, (head, *controls, why))


def _spoofed(ctx: Context, good: list[DNSObservation]) -> Finding | None:
    addresses = {a for q in good for a in q.addresses}
    control = ctx.control_addresses
    if not addresses or not control or addresses & control:
        return None
    head = (
        f"{good[0].resolver} answered {ctx.plan.domain} with {_listing(addresses)}, "
        f"the control {_listing(control)}"
    )
    proofs = {ip: _proof(ctx, ip) for ip in sorted(addresses)}
    valid = [ip for ip, proof in proofs.items() if proof is not None and proof[0] == "valid"]
    if valid:
        why = f"{', '.join(valid)} serves a valid certificate for {ctx.plan.domain}: a CDN answer"
        return Finding("reachable", None, 0.85, (head, why))
    disproved = [(ip, proof) for ip, proof in proofs.items() if proof is not None]
    if len(disproved) < len(proofs):
        return None  # some answer is neither proved nor disproved: let the later stages judge
    strong = any(kind == "strong" for _, (kind, _) in disproved)
    evidence = (head, *(f"{ip}: {reason}" for ip, (_, reason) in disproved))
    return Finding("blocked", Method.DNS_SPOOFED, 0.9 if strong else 0.75, evidence)


def _proof(ctx: Context, ip: str) -> tuple[str, str] | None:
    """Whether ``ip`` proves it serves the domain: ("valid", ""), a disproof, or None."""
    handshakes = [h for h in ctx.local.tls if h.ip == ip and not h.control]
    if any(tls_failure(h) is None and h.sni == ctx.plan.domain for h in handshakes):
        return ("valid", "")
    for h in handshakes:
        failure = tls_failure(h)
        if failure is not None and failure in CERT_FAILURES:
            return ("strong", f"TLS with SNI {h.sni}: {describe(failure)}")
    page = ctx.vantage_page
    for r in ctx.local.http:
        if r.ip == ip and answered(r):
            fp = fingerprint(r)
            if fp is not None:
                return ("strong", f"HTTP answer matches blockpage fingerprint {fp.name}")
            diff = differences(r, page) if page is not None else ()
            if diff:
                return ("strong", f"HTTP page differs from the control's: {diff[0]}")
    connects = [c.failure for c in ctx.local.tcp if c.ip == ip]
    elsewhere = ctx.vantage_reached or any(
        c.failure is None for c in ctx.local.tcp if c.ip in ctx.control_addresses
    )
    if connects and not settle(connects).works and elsewhere:
        failure = next(f for f in connects if f is not None)
        return ("weak", f"connect {describe(failure)} while the control's addresses work")
    return None
