"""HTTP/3: an endpoint's QUIC handshakes and their controls -> the endpoint's ``http3`` verdict.

Judged apart from the endpoint's own verdict (HTTPS over TCP) and never changing it. The
platform-SNI handshakes settle like every step's tries (``probe.classify.tries``): one success is
reachable, a failure counts only on every try of at least two. A failure is a block only beside
a working control: the benign-SNI QUIC handshake to the same address answered (the server speaks
QUIC there, so the name was the trigger), or TCP+TLS with the platform SNI to the same host
worked (the host is up and hosts the name; QUIC to it is what fails). Silence is ``quic.timeout``;
an answer that ends the connection before the handshake completes (a CONNECTION_CLOSE, a
stateless reset, a Version Negotiation packet offering no version we speak, an ICMP port or host
unreachable) is ``quic.closed``: the server has shown, over TLS or QUIC, that it would have
completed the handshake, so something else spoke for it. When the control vantage's QUIC
handshakes with the platform SNI fail too, the platform answers QUIC nowhere: ``outage.platform``
for HTTP/3; when they work, the block's confidence rises.
"""

from __future__ import annotations

from collections.abc import Sequence

from probe.classify.context import Context, tls_failure
from probe.classify.finding import describe, elapsed, tries_phrase
from probe.classify.tries import settle
from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.observations import QUICObservation
from probe.model.verdict import Http3Verdict

CLOSED_FAILURES = frozenset(
    {
        Failure.QUIC_CLOSED,
        Failure.QUIC_STATELESS_RESET,
        Failure.QUIC_INCOMPATIBLE_VERSION,
        Failure.CONNECTION_REFUSED,
        Failure.HOST_UNREACHABLE,
    }
)
REACHABLE = 0.8
QUIC_CONTROL = 0.85  # the benign SNI over QUIC to the same address answered
TCP_CONTROL_ONLY = 0.75  # only TCP+TLS worked: QUIC to the address may be off network-wide
UNDECIDED = 0.3
OUTSIDE_WORKS = 0.05  # added when the control vantage's QUIC handshake worked
OUTSIDE_FAILS = 0.8  # the platform answers QUIC nowhere: outage.platform for HTTP/3
_CLOSE_WORDS = {
    "connection_close": "closed by a CONNECTION_CLOSE",
    "stateless_reset": "ended by a stateless reset",
    "version_negotiation": "answered by a Version Negotiation packet",
    "icmp": "answered by an ICMP error",
}


def judge(ctx: Context) -> Http3Verdict | None:
    """The endpoint's HTTP/3 verdict, or None when no QUIC step ran for it."""
    shakes = ctx.local.quic
    if not shakes:
        return None
    skipped = next((q.skipped for q in shakes if q.skipped), None)
    if skipped is not None:
        return Http3Verdict(kind="inconclusive", confidence=0.0, evidence=(skipped,))
    platform = [q for q in shakes if not q.control]
    if not platform:
        return None
    worked = [q for q in platform if q.failure is None]
    if worked:
        return _reachable(worked[-1], platform)
    tries = settle([q.failure for q in platform])
    failure = tries.failure
    assert failure is not None
    line = _failed_line(platform, failure, tries.failed, tries.count)
    controls = _controls(ctx, platform[0].ip)
    if tries.outcome == "once":
        return _undecided(line, "one failed try that was not retried: not counted", controls)
    if failure is Failure.TIMEOUT:
        method = Method.QUIC_TIMEOUT
    elif failure in CLOSED_FAILURES:
        method = Method.QUIC_CLOSED
    else:
        return _undecided(line, f"a failure that is not a censor's signature ({failure})", controls)
    outside = _control_vantage(ctx)
    if outside is False:
        return Http3Verdict(
            kind="outage",
            method=Method.OUTAGE_PLATFORM,
            confidence=OUTSIDE_FAILS,
            evidence=(line, "the control vantage's QUIC handshakes failed too", *controls),
        )
    benign, tcp = _benign_answered(shakes, platform[0].ip), _tcp_works(ctx)
    if not benign and not tcp:
        why = "no control worked (benign SNI over QUIC, HTTPS over TCP to the host): not a block"
        return _undecided(line, why, controls)
    confidence = QUIC_CONTROL if benign else TCP_CONTROL_ONLY
    if outside:
        controls = (*controls, "control vantage: QUIC handshake with the platform SNI ok")
        confidence += OUTSIDE_WORKS
    return Http3Verdict(
        kind="blocked", method=method, confidence=confidence, evidence=(line, *controls)
    )


def _control_vantage(ctx: Context) -> bool | None:
    """Whether the control vantage completed a QUIC handshake with the platform SNI (None: it
    made none, or has no QUIC library)."""
    if ctx.control is None:
        return None
    tries = [q for q in ctx.control.quic if not q.control and q.skipped is None]
    if not tries:
        return None
    return any(q.failure is None for q in tries)


def _reachable(shake: QUICObservation, platform: Sequence[QUICObservation]) -> Http3Verdict:
    line = f"QUIC handshake with SNI {shake.sni} at {shake.ip}:{shake.port}: ok"
    if shake.handshake_seconds is not None:
        line += f" in {shake.handshake_seconds * 1000:.0f} ms"
    if shake.status is not None:
        line += f", HTTP/3 {shake.status} ({shake.body_length or 0} bytes read)"
    else:
        line += ", no HTTP/3 response to the GET"
    failed = [q for q in platform if q.failure is not None]
    notes = (
        (f"{len(failed)} of {len(platform)} QUIC tries failed ({failed[0].failure}): flaky",)
        if failed
        else ()
    )
    return Http3Verdict(kind="reachable", confidence=REACHABLE, evidence=(line, *notes))


def _failed_line(
    platform: Sequence[QUICObservation], failure: Failure, failed: int, count: int
) -> str:
    first = next(q for q in platform if q.failure is failure)
    how = _CLOSE_WORDS.get(first.close or "", describe(failure))
    if first.close == "connection_close":
        how += f" (error 0x{first.error_code or 0:x}"
        how += f", reason {first.reason!r})" if first.reason else ")"
    if first.versions:
        how += f" (versions {', '.join(first.versions)})"
    return (
        f"QUIC handshake with SNI {first.sni} at {first.ip}:{first.port}: {how} "
        f"{tries_phrase(failed, count)} (the first after {elapsed(first.t0, first.t)})"
    )


def _benign_answered(shakes: Sequence[QUICObservation], ip: str) -> bool:
    return any(q.control and q.ip == ip and q.server_answered for q in shakes)


def _tcp_works(ctx: Context) -> bool:
    """TCP+TLS with the platform SNI to the same host completed with a valid certificate."""
    return any(tls_failure(h) is None for h in ctx.local.tls if not h.control)


def _controls(ctx: Context, ip: str) -> tuple[str, ...]:
    """One line per control: the benign SNI over QUIC to ``ip``, and HTTPS over TCP."""
    lines: list[str] = []
    benign = [q for q in ctx.local.quic if q.control and q.ip == ip]
    if benign:
        answered = [q for q in benign if q.server_answered]
        if answered:
            lines.append(
                f"control: QUIC handshake with the benign SNI {answered[0].sni} to the same "
                "address: the server answered"
            )
        else:
            worst = benign[-1].failure
            lines.append(
                f"control: QUIC handshake with the benign SNI {benign[0].sni} to the same "
                f"address: {describe(worst) if worst else 'no answer'} too (QUIC to this "
                "address fails whatever the name)"
            )
    handshakes = [h for h in ctx.local.tls if not h.control]
    if _tcp_works(ctx):
        h = next(h for h in handshakes if tls_failure(h) is None)
        lines.append(f"control: HTTPS over TCP to {h.sni} at {h.ip}:{h.port}: TLS handshake ok")
    elif handshakes:
        lines.append(f"control: HTTPS over TCP to {handshakes[0].sni} fails as well")
    return tuple(lines)


def _undecided(line: str, why: str, controls: Sequence[str]) -> Http3Verdict:
    return Http3Verdict(kind="inconclusive", confidence=UNDECIDED, evidence=(line, why, *controls))
