"""The HTTP/3 verdict (probe.classify.quic) against recorded-style QUIC observations, and its
roll-up into the platform summary (probe.run): a QUIC-only block never makes a platform blocked."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from probe.classify import classify
from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.observations import QuicClose, QUICObservation
from probe.model.result import EndpointResult
from probe.model.verdict import METHODS, Http3Verdict, VerdictKind
from probe.run import platform_summary
from probe.steps.quic import SKIPPED_NO_LIBRARY
from tests.probe.observation_builders import TWITTER, X_IP, canaries_ok, obs, tls, x_clean


def shake(
    failure: Failure | None = None,
    *,
    control: bool = False,
    close: QuicClose | None = None,
    ip: str = X_IP,
) -> QUICObservation:
    return QUICObservation(
        ip=ip,
        sni="example.org" if control else "twitter.com",
        control=control,
        failure=failure,
        close=close,
        error_code=0x100 + 40 if close == "connection_close" else None,
        handshake_seconds=0.03 if failure is None else None,
        status=200 if failure is None and not control else None,
        body_length=4096 if failure is None and not control else None,
        sent=2400,
        received=3000 if failure is None else 0,
        t0=0.1,
        t=0.13 if failure is None else 2.1,
    )


OK, TIMEOUT, CLOSED = None, Failure.TIMEOUT, Failure.QUIC_CLOSED


@dataclass(frozen=True)
class Case:
    name: str
    shakes: tuple[QUICObservation, ...]
    verdict: VerdictKind
    method: Method | None
    tcp_works: bool = True


CASES = (
    Case("h3_ok", (shake(), shake(control=True)), "reachable", None),
    Case("h3_flaky", (shake(TIMEOUT), shake(), shake(control=True)), "reachable", None),
    Case(
        "sni_dropped_benign_ok",
        (shake(TIMEOUT), shake(TIMEOUT), shake(control=True)),
        "blocked",
        Method.QUIC_TIMEOUT,
    ),
    Case(
        "udp_dropped_tcp_ok",
        (
            shake(TIMEOUT),
            shake(TIMEOUT),
            shake(TIMEOUT, control=True),
            shake(TIMEOUT, control=True),
        ),
        "blocked",
        Method.QUIC_TIMEOUT,
    ),
    Case(
        "udp_dropped_tcp_down_too",
        (
            shake(TIMEOUT),
            shake(TIMEOUT),
            shake(TIMEOUT, control=True),
            shake(TIMEOUT, control=True),
        ),
        "inconclusive",
        None,
        tcp_works=False,
    ),
    Case(
        "forged_close",
        (
            shake(CLOSED, close="connection_close"),
            shake(CLOSED, close="connection_close"),
            shake(control=True),
        ),
        "blocked",
        Method.QUIC_CLOSED,
    ),
    Case(
        "icmp_after_initial",
        (
            shake(Failure.CONNECTION_REFUSED, close="icmp"),
            shake(TIMEOUT),
            shake(control=True),
        ),
        "blocked",
        Method.QUIC_CLOSED,
    ),
    Case(
        "version_negotiation_forged",
        (
            shake(Failure.QUIC_INCOMPATIBLE_VERSION, close="version_negotiation"),
            shake(Failure.QUIC_INCOMPATIBLE_VERSION, close="version_negotiation"),
            shake(control=True),
        ),
        "blocked",
        Method.QUIC_CLOSED,
    ),
    Case("one_try_only", (shake(TIMEOUT), shake(control=True)), "inconclusive", None),
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_http3_case(case: Case) -> None:
    """Each pattern gets its HTTP/3 verdict and method, and the endpoint's own verdict is the
    TCP path's whatever QUIC did."""
    local = obs(*x_clean()) if case.tcp_works else obs(tls(X_IP, failure=Failure.TIMEOUT))
    local = local.model_copy(update={"quic": case.shakes})
    verdict = classify(TWITTER, local, None, canaries_ok())
    assert verdict.http3 is not None
    assert (case.verdict, case.method) == (verdict.http3.kind, verdict.http3.method), (
        verdict.http3.evidence
    )
    assert verdict.http3.evidence and all(verdict.http3.evidence)
    if case.tcp_works:
        assert verdict.kind == "reachable"


@pytest.mark.parametrize(
    ("outside", "kind", "method"),
    [
        ((shake(),), "blocked", Method.QUIC_TIMEOUT),
        ((shake(TIMEOUT), shake(TIMEOUT)), "outage", Method.OUTAGE_PLATFORM),
    ],
    ids=["control_vantage_ok", "control_vantage_fails_too"],
)
def test_the_control_vantage_weighs_in(
    outside: tuple[QUICObservation, ...], kind: VerdictKind, method: Method
) -> None:
    """QUIC works from outside: the block gains confidence. It fails from outside too: the
    platform answers QUIC nowhere, an outage of its HTTP/3, not a block."""
    shakes = (shake(TIMEOUT), shake(TIMEOUT), shake(control=True))
    local = obs(*x_clean()).model_copy(update={"quic": shakes})
    control = obs(*x_clean()).model_copy(update={"quic": outside})
    alone = classify(TWITTER, local, None, canaries_ok()).http3
    http3 = classify(TWITTER, local, control, canaries_ok()).http3
    assert alone is not None and http3 is not None
    assert (http3.kind, http3.method) == (kind, method)
    if kind == "blocked":
        assert http3.confidence > alone.confidence


def test_quic_methods_have_cases_and_belong_to_blocked() -> None:
    """Both quic methods of the contract are reached by a case, and they are blocks."""
    assert {Method.QUIC_TIMEOUT, Method.QUIC_CLOSED} <= {c.method for c in CASES}
    assert METHODS[Method.QUIC_TIMEOUT] == METHODS[Method.QUIC_CLOSED] == "blocked"


def test_no_quic_step_no_http3_verdict() -> None:
    """An endpoint without QUIC observations has no http3 verdict (its JSON field is absent)."""
    assert classify(TWITTER, obs(*x_clean()), None, canaries_ok()).http3 is None


def test_library_missing_says_so() -> None:
    """Without aioquic the step sends nothing, and the HTTP/3 result says why."""
    skipped = QUICObservation(ip=X_IP, sni="twitter.com", skipped=SKIPPED_NO_LIBRARY, t0=0, t=0)
    local = obs(*x_clean()).model_copy(update={"quic": (skipped,)})
    http3 = classify(TWITTER, local, None, canaries_ok()).http3
    assert http3 is not None and http3.kind == "inconclusive"
    assert http3.evidence == (SKIPPED_NO_LIBRARY,)


def _row(target: str, verdict: VerdictKind, http3: Http3Verdict | None) -> EndpointResult:
    return EndpointResult(
        platform="youtube",
        target=target,
        domain="www.youtube.com",
        verdict=verdict,
        method=None if verdict == "reachable" else "tls.reset",
        confidence=0.9,
        evidence=("x",),
        throughput=None,
        measurement_id="m",
        http3=http3,
    )


BLOCKED_H3 = Http3Verdict(kind="blocked", method=Method.QUIC_TIMEOUT, confidence=0.85)


def test_quic_only_block_makes_the_platform_partial_not_blocked() -> None:
    """HTTP/3 blocked while HTTPS over TCP works: reachable, partial, and the evidence says so."""
    rows = [
        _row("https://www.youtube.com/", "reachable", BLOCKED_H3),
        _row("http://www.youtube.com/", "reachable", None),
    ]
    summary = platform_summary("youtube", rows)
    assert summary.verdict == "reachable" and summary.method is None
    assert summary.partial
    assert any(
        "HTTP/3 blocked (quic.timeout), HTTPS over TCP reachable" in line
        for line in summary.evidence
    )
    assert summary.http3 is not None and summary.http3.method == Method.QUIC_TIMEOUT
    as_json = summary.model_dump(mode="json")
    assert as_json["http3"]["verdict"] == "blocked"


def test_blocked_over_tcp_stays_blocked() -> None:
    """When TCP is blocked too, the platform is blocked by its TCP method, as before."""
    rows = [_row("https://www.youtube.com/", "blocked", BLOCKED_H3)]
    summary = platform_summary("youtube", rows)
    assert (summary.verdict, summary.method, summary.partial) == ("blocked", "tls.reset", False)


def test_the_human_table_notes_a_blocked_http3() -> None:
    """`blockprobe run`'s method cell adds the HTTP/3 result when it is not reachable."""
    from probe.commands.run import method_text

    assert method_text(_row("https://www.youtube.com/", "reachable", BLOCKED_H3)) == (
        "HTTP/3 blocked (quic.timeout)"
    )
    ok = Http3Verdict(kind="reachable", confidence=0.8)
    assert method_text(_row("https://www.youtube.com/", "reachable", ok)) == ""
    assert method_text(_row("https://www.youtube.com/", "blocked", BLOCKED_H3)) == (
        "tls.reset; HTTP/3 blocked (quic.timeout)"
    )
