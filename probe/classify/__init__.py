"""The classifier: one endpoint's observations and its controls -> a Verdict, with no I/O.

Rules run in a fixed order and the first that concludes wins: ``outage.local`` (nothing works
from here), DNS, TCP, TLS, HTTP, throughput. A rule may instead leave a note (a flapping try, a
partial IP block, a CDN answer) and let the next stage judge. A block is only ever called when a
control worked (docs/verdicts.md has the order, the rules and their thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from probe.classify import dns, families, http, outage, quic, throttle, transport
from probe.classify.context import Context, answered, tls_failure
from probe.classify.finding import Finding, elapsed
from probe.flows.plan import EndpointPlan
from probe.model.measurement import Observations
from probe.model.verdict import Family, Verdict

__all__ = ["classify", "classify_family"]

RULES: tuple[Callable[[Context], Finding | None], ...] = (
    outage.local,
    dns.check,
    transport.tcp,
    transport.tls,
    http.check,
    throttle.check,
)
REACHABLE = 0.8  # confidence of a clean reachable verdict, 0.9 when the control vantage agrees


def classify(
    plan: EndpointPlan,
    local: Observations,
    control: Observations | None,
    canaries: Mapping[str, Observations],
    *,
    one_shot: bool = False,
) -> Verdict:
    """Classify one endpoint measured here (``local``) against its controls, per address family.

    Measured over IPv4 and IPv6, each family is classified on its own observations and controls
    and the two verdicts are joined (``probe.classify.families``); over one family, that family's.
    ``one_shot`` is as for ``classify_family``.
    """
    tried = families.measured(local, canaries)
    if not tried:
        return classify_family(plan, local, control, canaries, one_shot=one_shot)
    verdicts: dict[Family, Verdict] = {}
    notes: dict[Family, str] = {}
    for family in tried:
        mine = families.split(local, family, plan.domain)
        if family == "ipv6" and families.aaaa_withheld(local, plan.domain):
            mine = mine.model_copy(update={"dns": families.without_system_aaaa(mine)})
            notes[family] = families.WITHHELD
        theirs = families.split(control, family, plan.domain) if control is not None else None
        verdicts[family] = classify_family(
            plan,
            mine,
            theirs if theirs != Observations() else None,
            families.split_canaries(canaries, family),
            one_shot=one_shot,
        )
    for family, note in notes.items():
        verdicts[family] = families.noted(verdicts[family], note)
    if len(tried) == 2:
        return families.join(verdicts)
    return families.single(verdicts[tried[0]], tried[0], local)


def classify_family(
    plan: EndpointPlan,
    local: Observations,
    control: Observations | None,
    canaries: Mapping[str, Observations],
    *,
    one_shot: bool = False,
) -> Verdict:
    """Classify one endpoint measured here (``local``) against its controls.

    ``one_shot`` says the observations come from a measurement that tries each step once (an
    imported OONI measurement): a single active failure the control vantage does not see may
    then conclude, at a confidence that says one try was seen; our own probe always retries.
    An endpoint with QUIC observations also gets its ``http3`` verdict (``probe.classify.quic``),
    judged on its own: it never changes the endpoint's verdict.
    """
    ctx = Context(plan, local, control, canaries, one_shot)
    verdict = _classify(ctx)
    found = quic.judge(ctx)
    return verdict if found is None else verdict.model_copy(update={"http3": found})


def _classify(ctx: Context) -> Verdict:
    """The endpoint's verdict (HTTPS or HTTP over TCP): the rules in order."""
    plan, local = ctx.plan, ctx.local
    down, up = throttle.summary(ctx, "down"), throttle.summary(ctx, "up")
    notes: list[str] = []
    confidence = REACHABLE + (0.1 if ctx.vantage_reached else 0.0)
    for rule in RULES:
        found = rule(ctx)
        if found is None:
            continue
        if found.verdict == "reachable":
            notes.extend(found.evidence)
            confidence = min(confidence, found.confidence)
            continue
        found = _gate(ctx, found)
        return Verdict(
            kind=found.verdict,
            method=found.method,
            confidence=round(found.confidence, 2),
            evidence=(*found.evidence, *(p.description for p in local.packets)),
            throughput=down,
            throughput_up=up,
        )
    worked = _worked(ctx)
    if worked is None:
        why = "no observations" if local == Observations() else "nothing beyond DNS worked"
        return Verdict(
            kind="inconclusive",
            confidence=0.3,
            evidence=(f"{plan.domain}: {why}", *notes),
            throughput=down,
            throughput_up=up,
        )
    return Verdict(
        kind="reachable",
        confidence=round(confidence, 2),
        evidence=(worked, *notes),
        throughput=down,
        throughput_up=up,
    )


def _gate(ctx: Context, found: Finding) -> Finding:
    """The floor under every block: some control must have worked."""
    if found.verdict != "blocked" or ctx.any_control_worked:
        return found
    why = "no control worked (canary, benign SNI, control resolver, control vantage): not a block"
    return Finding("inconclusive", None, 0.3, (*found.evidence, why))


def _worked(ctx: Context) -> str | None:
    """One line saying what worked for the endpoint, from the deepest stage reached."""
    responses = [r for r in ctx.local.http if answered(r)]
    if responses:
        r = responses[-1]
        where = f" from {r.ip}" if r.ip else ""
        return f"GET {r.url}: HTTP {r.status}{where} in {elapsed(r.t0, r.t)}"
    handshakes = [h for h in ctx.local.tls if not h.control and tls_failure(h) is None]
    if handshakes:
        h = handshakes[-1]
        return f"TLS handshake with SNI {h.sni} at {h.ip}:{h.port}: ok, valid certificate"
    connects = [c for c in ctx.local.tcp if c.failure is None]
    if connects:
        c = connects[-1]
        return f"TCP connect to {c.ip}:{c.port}: ok in {elapsed(c.t0, c.t)}"
    return None
