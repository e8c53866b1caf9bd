"""Rate-limited ICMP: a run's unreachable answers shared with the endpoints that met silence."""

from __future__ import annotations

from datetime import UTC, datetime

from probe.classify import classify
from probe.classify.icmp import share_unreachable
from probe.flows.plan import EndpointPlan
from probe.model.failures import Failure
from probe.model.measurement import Measurement, Observations, VantageInfo
from probe.model.methods import Method
from probe.model.observations import DNSObservation
from tests.probe.observation_builders import (
    CONTROL_RESOLVER,
    TWITTER,
    X_DOMAINS,
    X_IP,
    X_IP2,
    canaries_both_families,
    dns,
    obs,
    tcp,
    twice,
)

X6 = "fd00:198:18:100::10"
HTTP = EndpointPlan(
    platform="x", url="http://twitter.com/", domain="twitter.com", platform_domains=X_DOMAINS
)
UNREACHABLE, TIMEOUT = Failure.HOST_UNREACHABLE, Failure.TIMEOUT


def _resolved(*addresses: str) -> list[DNSObservation]:
    found: list[DNSObservation] = []
    for ip in addresses:
        qtype = "AAAA" if ":" in ip else "A"
        found.append(dns("twitter.com", ip, qtype=qtype))
        found.append(dns("twitter.com", ip, resolver=CONTROL_RESOLVER, control=True, qtype=qtype))
    return found


def _measured(plan: EndpointPlan, local: Observations) -> Measurement:
    return Measurement(
        measurement_id=plan.url,
        platform=plan.platform,
        target=plan.url,
        domain=plan.domain,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        runtime=1.0,
        vantage=VantageInfo(software="blockprobe/test"),
        local=local,
        verdict=classify(plan, local, None, canaries_both_families()),
    )


def _connects(port: int, failures: dict[str, Failure]) -> Observations:
    return obs(*_resolved(*failures), *(twice(tcp(ip, port, f)) for ip, f in failures.items()))


def test_silence_on_an_address_the_run_saw_unreachable_is_the_null_route() -> None:
    """https got ICMP host unreachable; http to the same address met only silence (the router's
    ICMP budget was spent): on its own a timeout, with the run's evidence unreachable."""
    answered = _measured(TWITTER, _connects(443, {X_IP: UNREACHABLE}))
    silent = _measured(HTTP, _connects(80, {X_IP: TIMEOUT}))
    assert (answered.verdict.method, silent.verdict.method) == (
        Method.TCP_UNREACHABLE,
        Method.TCP_TIMEOUT,
    )
    first, second = share_unreachable([answered, silent])
    assert first == answered
    assert second.verdict.kind == "blocked" and second.verdict.method is Method.TCP_UNREACHABLE
    assert second.verdict.confidence == silent.verdict.confidence
    assert (
        "ICMP unreachable came for other connections to 198.18.100.10"
        in (second.verdict.evidence[-1])
    )


def test_silence_elsewhere_stays_a_timeout() -> None:
    """An address no connect of the run saw unreachable: the timeout is all there is."""
    answered = _measured(TWITTER, _connects(443, {X_IP: UNREACHABLE}))
    silent = _measured(HTTP, _connects(80, {X_IP2: TIMEOUT}))
    assert share_unreachable([answered, silent])[1] == silent
    # Nothing unreachable in the run: nothing changes.
    alone = _measured(HTTP, _connects(80, {X_IP: TIMEOUT}))
    assert share_unreachable([alone]) == [alone]


def test_each_family_on_its_own() -> None:
    """Over both families: IPv4 silence on an address seen unreachable becomes unreachable, the
    IPv6 one (never answered) stays a timeout, and so does the joined method."""
    answered = _measured(TWITTER, _connects(443, {X_IP: UNREACHABLE}))
    silent = _measured(HTTP, _connects(80, {X_IP: TIMEOUT, X6: TIMEOUT}))
    shared = share_unreachable([answered, silent])[1].verdict
    assert shared.families is not None
    assert shared.families["ipv4"].method is Method.TCP_UNREACHABLE
    assert shared.families["ipv6"].method is Method.TCP_TIMEOUT
    assert shared.method is Method.TCP_TIMEOUT
    assert shared.evidence[0].startswith("blocked over IPv4 (tcp.unreachable)")
    # Both families answered unreachable elsewhere: the joined method follows.
    both = _measured(TWITTER, _connects(443, {X_IP: UNREACHABLE, X6: UNREACHABLE}))
    joined = share_unreachable([both, silent])[1].verdict
    assert joined.method is Method.TCP_UNREACHABLE
    assert joined.families is not None
    assert {v.method for v in joined.families.values()} == {Method.TCP_UNREACHABLE}
