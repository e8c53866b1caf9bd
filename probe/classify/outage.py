"""Outage rules: failures that are not targeted.

``outage.local``: the endpoint failed and so did every canary and local control, so this vantage
point has no working path. ``outage.platform``: the control vantage fails at the same stage, so
the platform is down (or broken) for everyone. ``outage.dns`` lives with the DNS rules.
"""

from __future__ import annotations

from typing import Literal

from probe.classify.context import Context, reached, tls_failure
from probe.classify.finding import Finding, describe
from probe.model.measurement import Observations
from probe.model.methods import Method

Stage = Literal["tcp", "tls", "http"]
MAX_EVIDENCE = 3  # lines of control-vantage evidence kept


def _failures(obs: Observations) -> list[str]:
    """What failed in ``obs``, leaving out the control observations (counted separately)."""
    lines = [
        f"query for {q.domain} {describe(q.failure)}"
        for q in obs.dns
        if q.failure and not q.control
    ]
    lines += [f"connect to {c.ip}:{c.port} {describe(c.failure)}" for c in obs.tcp if c.failure]
    for h in obs.tls:
        failure = tls_failure(h)
        if failure is not None and not h.control:
            lines.append(f"TLS with SNI {h.sni} at {h.ip}:{h.port} {describe(failure)}")
    lines += [f"GET {r.url} {describe(r.failure)}" for r in obs.http if r.failure]
    return lines


def local(ctx: Context) -> Finding | None:
    """``outage.local`` when the endpoint, every canary and every local control failed."""
    endpoint = _failures(ctx.local)
    controls = ctx.local_controls
    if reached(ctx.local) or not endpoint or ctx.canary_reached or any(controls):
        return None
    canaries = {name: lines for name, c in sorted(ctx.canaries.items()) if (lines := _failures(c))}
    if not canaries and not controls:
        return None  # nothing to compare with: the stage rules will say inconclusive
    evidence = [f"{ctx.plan.domain}: {endpoint[0]}"]
    evidence += [f"canary {name}: {lines[0]}" for name, lines in canaries.items()]
    if controls:
        evidence.append(f"every local control failed ({_controls_measured(ctx)})")
    confidence = 0.9 if canaries and controls else 0.75
    return Finding("outage", Method.OUTAGE_LOCAL, confidence, tuple(evidence))


def _controls_measured(ctx: Context) -> str:
    """``4 measured: 2 control resolver queries, 1 benign-SNI handshake, 1 control transfer``."""
    kinds = (
        (sum(1 for q in ctx.local.dns if q.control), "control resolver quer", "y", "ies"),
        (sum(1 for h in ctx.local.tls if h.control), "benign-SNI handshake", "", "s"),
        (sum(1 for t in ctx.local.throughput if t.control), "control transfer", "", "s"),
    )
    parts = [f"{n} {word}{one if n == 1 else many}" for n, word, one, many in kinds if n]
    return f"{sum(n for n, *_ in kinds)} measured: {', '.join(parts)}"


def _vantage_results(control: Observations, stage: Stage) -> list[tuple[str, str | None]]:
    """(what, problem or None when it worked) for each control-vantage try at ``stage``."""
    if stage == "tcp":
        return [
            (f"connect to {c.ip}:{c.port}", describe(c.failure) if c.failure else None)
            for c in control.tcp
        ]
    if stage == "tls":
        results: list[tuple[str, str | None]] = []
        for h in control.tls:
            if not h.control:
                failure = tls_failure(h)
                what = f"TLS with SNI {h.sni} at {h.ip}:{h.port}"
                results.append((what, describe(failure) if failure else None))
        return results
    results = []
    for r in control.http:
        if r.failure is not None:
            results.append((f"GET {r.url}", describe(r.failure)))
        elif r.status is None or r.status >= 500:
            results.append((f"GET {r.url}", f"answered HTTP {r.status}"))
        else:
            results.append((f"GET {r.url}", None))
    return results


def platform(ctx: Context, stage: Stage) -> Finding | None:
    """``outage.platform`` when the control vantage fails at ``stage`` too (and never works)."""
    if ctx.control is None:
        return None
    results = _vantage_results(ctx.control, stage)
    if not results or any(problem is None for _, problem in results):
        return None
    lines = list(dict.fromkeys(f"control vantage: {what} {problem}" for what, problem in results))
    confidence = 0.9 if ctx.canary_reached else 0.8
    return Finding("outage", Method.OUTAGE_PLATFORM, confidence, tuple(lines[:MAX_EVIDENCE]))
