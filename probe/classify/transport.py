"""Transport rules: TCP connects and TLS handshakes to the endpoint's addresses.

Tries are grouped by address. One address that works is enough for the endpoint to be reachable
(partial IP blocking is not a block). A TLS failure with the platform SNI is only SNI filtering
when the benign SNI to the same address completes; when it fails too, the cause is not the name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from probe.classify import outage
from probe.classify.context import CERT_FAILURES, Context, tls_failure
from probe.classify.finding import ONE_TRY, ONE_TRY_NOTE, Finding, describe, elapsed, tries_phrase
from probe.classify.tries import ACTIVE_FAILURES, Tries, settle
from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.observations import TLSHandshakeObservation

TCP_METHODS: dict[Failure, Method] = {
    Failure.TIMEOUT: Method.TCP_TIMEOUT,
    Failure.CONNECTION_REFUSED: Method.TCP_RESET,
    Failure.CONNECTION_RESET: Method.TCP_RESET,
    Failure.HOST_UNREACHABLE: Method.TCP_UNREACHABLE,
    Failure.NETWORK_UNREACHABLE: Method.TCP_UNREACHABLE,
}
TLS_METHODS: dict[Failure, Method] = {
    Failure.CONNECTION_RESET: Method.TLS_RESET,
    Failure.TIMEOUT: Method.TLS_TIMEOUT,
    Failure.EOF: Method.TLS_EOF,
    Failure.SSL_FAILED_HANDSHAKE: Method.TLS_ALERT,
}
MAX_LINES = 3  # per-address evidence lines kept


@dataclass(frozen=True)
class _Split:
    """Addresses by how their tries settled."""

    settled: dict[str, Tries]

    @property
    def working(self) -> list[str]:
        return [ip for ip, t in self.settled.items() if t.works]

    @property
    def failed(self) -> list[str]:
        return [ip for ip, t in self.settled.items() if t.outcome == "failed"]

    @property
    def once(self) -> list[str]:
        return [ip for ip, t in self.settled.items() if t.outcome == "once"]

    def concluding(self, one_shot: bool) -> list[str]:
        """The failing addresses a verdict may rest on: tried more than once, or tried once in a
        one-try measurement (OONI's)."""
        return self.failed or (self.once if one_shot else [])

    def common_failure(self, failed: list[str] | None = None) -> Failure:
        """The failure most tries at the consistently failing addresses saw."""
        counts: Counter[Failure] = Counter()
        for ip in self.failed if failed is None else failed:
            tries = self.settled[ip]
            counts[tries.failure or Failure.UNKNOWN] += tries.failed
        return counts.most_common(1)[0][0]


def _split(tries: Iterable[tuple[str, Failure | None]]) -> _Split:
    grouped: dict[str, list[Failure | None]] = {}
    for ip, failure in tries:
        grouped.setdefault(ip, []).append(failure)
    return _Split({ip: settle(failures) for ip, failures in grouped.items()})


def _notes(what: str, split: _Split) -> Finding | None:
    """A pass note when some address failed or flapped while another worked."""
    notes = []
    broken = split.failed + split.once
    if broken:
        notes.append(
            f"partial: {what} to {', '.join(broken)} failed while {', '.join(split.working)} "
            "worked (not a block: the endpoint stays reachable)"
        )
    flaky = [ip for ip in split.working if split.settled[ip].outcome == "flaky"]
    if flaky:
        notes.append(f"{what} to {', '.join(flaky)} failed once, the retry worked")
    return Finding("reachable", None, 0.7, tuple(notes)) if notes else None


def _once(what: str, split: _Split) -> Finding:
    why = f"{what} to {', '.join(split.once)} failed once and was not retried"
    return Finding("inconclusive", None, 0.4, (why,))


def tcp(ctx: Context) -> Finding | None:
    """Judge the TCP connects to the endpoint's addresses."""
    connects = [c for c in ctx.local.tcp if c.port == ctx.port]
    if not connects:
        return None
    split = _split((c.ip, c.failure) for c in connects)
    if split.working:
        return _notes("TCP connect", split)
    failed = split.concluding(ctx.one_shot)
    if not failed:
        return _once("TCP connect", split)
    failure = split.common_failure(failed)
    lines = [
        f"TCP connect to {ip}:{ctx.port} {describe(failure)} "
        f"{tries_phrase(split.settled[ip].failed, split.settled[ip].count)}"
        for ip in failed[:MAX_LINES]
    ]
    down = outage.platform(ctx, "tcp")
    if down is not None:
        return down.after(lines)
    method = TCP_METHODS.get(failure)
    if method is None:
        return Finding("inconclusive", None, 0.4, tuple(lines))
    vantage = ctx.control is not None and any(c.failure is None for c in ctx.control.tcp)
    if not split.failed or (ctx.one_shot and not ctx.canary_reached):
        return _elsewhere(method, failure, lines, vantage, "connect", once=not split.failed)
    if not ctx.canary_reached:
        why = "no canary worked through this path to show that other destinations work"
        return Finding("inconclusive", None, 0.4, (*lines, why))
    evidence = [*lines, f"canaries on the same path work: {', '.join(sorted(ctx.canaries))}"]
    confidence = 0.85
    if ctx.control is not None and any(c.failure is None for c in ctx.control.tcp):
        evidence.append("control vantage: connect ok")
        confidence = 0.9
    return Finding("blocked", method, confidence, tuple(evidence))


def _elsewhere(
    method: Method, failure: Failure, lines: list[str], vantage: bool, step: str, *, once: bool
) -> Finding:
    """A failure in a measurement made elsewhere (OONI's), with no canary or benign SNI: a block
    only when it is an active answer (a reset, an ICMP unreachable, a close, an alert) and the
    control vantage's ``step`` worked; from one try, at a confidence that says so."""
    if failure not in ACTIVE_FAILURES:
        why = (
            f"{describe(failure)} {'on the only try' if once else 'with no canary'}: "
            "loss or an outage cannot be told from a block"
        )
        return Finding("inconclusive", None, 0.4, (*lines, why))
    if not vantage:
        why = f"the control vantage has no working {step} to compare with"
        return Finding("inconclusive", None, 0.4, (*lines, why))
    if once:
        return Finding(
            "blocked", method, ONE_TRY, (*lines, f"control vantage: {step} ok", ONE_TRY_NOTE)
        )
    why = f"control vantage: {step} ok (the only control of a measurement made elsewhere)"
    return Finding("blocked", method, 0.8, (*lines, why))


def _tls_line(h: TLSHandshakeObservation, failure: Failure, tries: Tries) -> str:
    times = tries_phrase(tries.failed, tries.count)
    if failure in CERT_FAILURES:
        return f"TLS handshake with SNI {h.sni} at {h.ip}:{h.port}: {describe(failure)} {times}"
    return (
        f"ClientHello with SNI {h.sni} {describe(failure)} at {h.ip}:{h.port} "
        f"after {elapsed(h.t0, h.t)} ({times})"
    )


def tls(ctx: Context) -> Finding | None:
    """Judge the TLS handshakes with the platform SNI, against the benign-SNI controls."""
    handshakes = [h for h in ctx.local.tls if h.port == ctx.port]
    platform = [h for h in handshakes if not h.control]
    if not platform:
        return None
    what = f"TLS handshake with SNI {ctx.plan.domain}"
    split = _split((h.ip, tls_failure(h)) for h in platform)
    if split.working:
        return _notes(what, split)
    failed = split.concluding(ctx.one_shot)
    if not failed:
        return _once(what, split)
    failure = split.common_failure(failed)
    firsts = {h.ip: h for h in reversed(platform)}
    lines = [_tls_line(firsts[ip], failure, split.settled[ip]) for ip in failed[:MAX_LINES]]
    down = outage.platform(ctx, "tls")
    if down is not None:
        return down.after(lines)
    if failure in CERT_FAILURES:
        found = _mitm(ctx, lines, firsts[failed[0]])
        if not split.failed and found.verdict == "blocked":
            return Finding("blocked", found.method, ONE_TRY, (*found.evidence, ONE_TRY_NOTE))
        return found
    method = TLS_METHODS.get(failure)
    if method is None:
        return Finding("inconclusive", None, 0.4, tuple(lines))
    benign = [h for h in handshakes if h.control and h.ip in failed]
    vantage_ok = ctx.control is not None and any(
        tls_failure(h) is None for h in ctx.control.tls if not h.control
    )
    if not split.failed or (ctx.one_shot and not benign and not ctx.canary_reached):
        # OONI's test helper (before v0.5) fetched the page over https without a TLS record
        page = ctx.control is not None and not ctx.control.tls and ctx.vantage_page is not None
        vantage = vantage_ok or page
        return _elsewhere(method, failure, lines, vantage, "handshake", once=not split.failed)
    if benign:
        control = settle([None if h.server_answered else _failure(h) for h in benign])
        if control.works:
            return _benign_answered(ctx, platform, split, lines, method, benign, vantage_ok)
        benign_failure = control.failure or Failure.UNKNOWN
        if _residual(failure, benign_failure) and vantage_ok and ctx.canary_reached:
            evidence = [
                *lines,
                f"same IP with SNI {benign[0].sni}: {describe(benign_failure)} after the reset: "
                "residual blocking of this server (the censor keeps dropping the flow's 3-tuple)",
                "control vantage: handshake ok",
                f"canaries on the same path work: {', '.join(sorted(ctx.canaries))}",
            ]
            return Finding("blocked", method, 0.75, tuple(evidence))
        why = (
            f"same IP with SNI {benign[0].sni}: {describe(benign_failure)} "
            "too, with no TLS answer from the server, so not SNI filtering (an IP block, a path "
            "MTU problem or a server fault)"
        )
        return Finding("inconclusive", None, 0.5, (*lines, why))
    if vantage_ok and ctx.canary_reached:
        why = "no benign-SNI control; the control vantage completes the handshake and canaries work"
        return Finding("blocked", method, 0.7, (*lines, why))
    why = "no benign SNI to the same IP and no control-vantage handshake to compare with"
    return Finding("inconclusive", None, 0.4, (*lines, why))


def _failure(handshake: TLSHandshakeObservation) -> Failure:
    return handshake.failure or Failure.UNKNOWN


def _answer(handshake: TLSHandshakeObservation) -> str:
    """How the server answered the benign SNI, for evidence."""
    if handshake.failure is None and handshake.cert_valid is not False:
        return "handshake ok"
    if handshake.alert is not None:
        return f"the server answered with the TLS alert {handshake.alert}"
    cert = handshake.certificate
    names = ", ".join(cert.sans) if cert is not None and cert.sans else None
    what = f"a certificate for {names}" if names else "a certificate"
    why = describe(tls_failure(handshake) or _failure(handshake))
    return f"the server answered with {what} ({why})"


def _benign_answered(
    ctx: Context,
    platform: list[TLSHandshakeObservation],
    split: _Split,
    lines: list[str],
    method: Method,
    benign: list[TLSHandshakeObservation],
    vantage_ok: bool,
) -> Finding:
    """The platform SNI failed where the server answers the benign SNI in TLS.

    Any TLS answer shows that TLS to this address works and the server reads ClientHellos: a real
    server asked for a name it does not host presents some certificate or an alert, never a valid
    certificate for that name. Two answers prove less: an alert for the benign name next to an
    alert for the platform's (the server may refuse both), and a lone small alert next to a
    platform handshake that timed out (a path that loses only large packets passes the alert), so
    then the control vantage, or a canary's completed handshake through this path, must back it.
    """
    answered = [h for h in benign if h.server_answered]
    ok = next((h for h in answered if h.failure is None), answered[0])
    only_alerts = all(h.alert is not None for h in answered)
    control_line = f"same IP with SNI {ok.sni}: {_answer(ok)}"
    if method == Method.TLS_ALERT and only_alerts:
        if vantage_ok and ctx.canary_reached:
            evidence = [
                *lines,
                f"{control_line}, so the alert alone does not show the name is the cause",
                "control vantage: handshake ok",
                f"canaries on the same path work: {', '.join(sorted(ctx.canaries))}",
            ]
            return Finding("blocked", method, 0.7, tuple(evidence))
        why = f"{control_line} too: the server may refuse both names"
        return Finding("inconclusive", None, 0.5, (*lines, why))
    confidence = 0.95 if vantage_ok else 0.9
    extra: list[str] = []
    if method == Method.TLS_TIMEOUT and only_alerts:
        canary_tls = sorted(
            {h.sni for c in ctx.canaries.values() for h in c.tls if tls_failure(h) is None}
        )
        if not canary_tls:
            why = (
                f"{control_line}, a small answer: a path losing large packets would pass it too, "
                "and no canary handshake through this path shows otherwise"
            )
            return Finding("inconclusive", None, 0.5, (*lines, why))
        extra.append(
            f"large TLS answers cross this path: canary handshakes completed "
            f"({', '.join(canary_tls)})"
        )
        confidence -= 0.1
    slowed = _slowed(platform, split.failed) if method == Method.TLS_TIMEOUT else 0
    if slowed:
        evidence = [
            *lines,
            f"the server's handshake data was arriving ({slowed} bytes) when it timed "
            "out: the flow is slowed, not dropped",
            f"{control_line} in {elapsed(ok.t0, ok.t)}",
        ]
        return Finding("throttled", Method.THROTTLE_STALL, 0.7, tuple(evidence))
    evidence = [*lines, control_line, *extra]
    if vantage_ok:
        evidence.append("control vantage: handshake ok")
    return Finding("blocked", method, round(confidence, 2), tuple(evidence))


def _slowed(platform: list[TLSHandshakeObservation], failed: list[str]) -> int:
    """Bytes the server got through in the timed-out handshakes (0: nothing came back).

    A censor that drops the flow after the ClientHello lets nothing through; a shaper or a
    policer delays the server's handshake messages, which arrive in part before the timeout.
    """
    return max(
        (h.received or 0 for h in platform if h.ip in failed and h.failure is Failure.TIMEOUT),
        default=0,
    )


def _residual(platform: Failure, benign: Failure) -> bool:
    """Whether the platform SNI drew a reset while the benign SNI then only timed out.

    A path-MTU problem or an IP block never answers a ClientHello with a reset; a censor with
    residual blocking (GFW, Iran) resets the trigger and then drops the same client, server and
    port for a while, whatever the SNI.
    """
    return platform == Failure.CONNECTION_RESET and benign == Failure.TIMEOUT


def _mitm(ctx: Context, lines: list[str], local: TLSHandshakeObservation) -> Finding:
    vantage = [h for h in ctx.control.tls if not h.control] if ctx.control is not None else []
    if not vantage:
        why = "no control-vantage handshake: cannot tell interception from a broken certificate"
        return Finding("inconclusive", None, 0.4, (*lines, why))
    seen = local.certificate.issuer if local.certificate is not None else "(issuer not recorded)"
    good = next(h for h in vantage if tls_failure(h) is None)  # outage.platform ruled out
    issuer = good.certificate.issuer if good.certificate is not None else "a trusted CA"
    evidence = (
        *lines,
        f"certificate presented here was issued by {seen}",
        f"control vantage: valid certificate for {good.sni} from {issuer}",
    )
    return Finding("blocked", Method.TLS_MITM, 0.9, evidence)
