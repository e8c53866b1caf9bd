"""The classifier over both address families: each judged on its own, the worse one chosen."""

from __future__ import annotations

from probe.classify import classify
from probe.classify.bogons import is_bogon
from probe.model.failures import Failure
from tests.probe.observation_builders import (
    CANARY6,
    CANARY_IP,
    CONTROL_RESOLVER,
    TWITTER,
    X_IP,
    benign,
    canaries_both_families,
    canaries_ok,
    dns,
    http,
    obs,
    tcp,
    tls,
    twice,
)

X6 = "fd00:198:18:100::10"


def _resolved() -> list[object]:
    """twitter.com answered A and AAAA by the system and the control resolver alike."""
    return [
        dns("twitter.com", X_IP),
        dns("twitter.com", X6, qtype="AAAA"),
        dns("twitter.com", X_IP, resolver=CONTROL_RESOLVER, control=True),
        dns("twitter.com", X6, resolver=CONTROL_RESOLVER, control=True, qtype="AAAA"),
    ]


def _works(ip: str) -> list[object]:
    return [tcp(ip), tls(ip), benign(ip), http(ip=ip)]


def _reset(ip: str) -> list[object]:
    return [tcp(ip), *twice(tls(ip, failure=Failure.CONNECTION_RESET)), benign(ip)]


def test_blocked_over_ipv4_reachable_over_ipv6() -> None:
    """An SNI reset on IPv4 only: the endpoint is blocked (tls.reset), and says per family."""
    local = obs(*_resolved(), *_reset(X_IP), *_works(X6))
    verdict = classify(TWITTER, local, None, canaries_both_families())
    assert ("blocked", "tls.reset") == (verdict.kind, verdict.method)
    assert verdict.families is not None
    assert {f: (v.kind, v.method) for f, v in verdict.families.items()} == {
        "ipv4": ("blocked", "tls.reset"),
        "ipv6": ("reachable", None),
    }
    assert verdict.evidence[0] == "blocked over IPv4 (tls.reset), reachable over IPv6"
    dumped = verdict.model_dump(mode="json")
    assert dumped["families"]["ipv6"] == {"verdict": "reachable", "method": None}


def test_blocked_over_ipv6_only() -> None:
    """A blackhole of the IPv6 addresses only: blocked by tcp.timeout, IPv4 reachable."""
    dead = twice(tcp(X6, failure=Failure.TIMEOUT))
    local = obs(*_resolved(), *_works(X_IP), *dead)
    verdict = classify(TWITTER, local, None, canaries_both_families())
    assert ("blocked", "tcp.timeout") == (verdict.kind, verdict.method)
    assert verdict.families is not None
    assert (verdict.families["ipv4"].kind, verdict.families["ipv6"].method) == (
        "reachable",
        "tcp.timeout",
    )
    assert verdict.evidence[0] == "reachable over IPv4, blocked over IPv6 (tcp.timeout)"


def test_both_blocked_takes_the_ipv4_method() -> None:
    """Both families blocked (differently): the IPv4 method names the endpoint's verdict."""
    dead = twice(tcp(X6, failure=Failure.TIMEOUT))
    local = obs(*_resolved(), *_reset(X_IP), *dead)
    verdict = classify(TWITTER, local, None, canaries_both_families())
    assert ("blocked", "tls.reset") == (verdict.kind, verdict.method)


def test_a_broken_ipv6_path_does_not_override_ipv4() -> None:
    """Nothing works over IPv6 from here (canaries neither): that is no verdict on the endpoint."""
    canaries = canaries_both_families()
    v4 = canaries_ok()["example.org"]
    canaries["example.org"] = v4.model_copy(
        update={
            "dns": (*v4.dns, dns("example.org", CANARY6, qtype="AAAA")),
            "tcp": (*v4.tcp, *twice(tcp(CANARY6, failure=Failure.NETWORK_UNREACHABLE))),
        }
    )
    dead = twice(tcp(X6, failure=Failure.NETWORK_UNREACHABLE))
    local = obs(*_resolved(), *_works(X_IP), *dead)
    verdict = classify(TWITTER, local, None, canaries)
    assert ("reachable", None, None) == (verdict.kind, verdict.method, verdict.families)
    assert verdict.evidence[-1] == (
        "measured over IPv4 only: IPv6 unreachable from here (no route)"
    )


def test_ipv6_silent_here_is_no_verdict_on_the_endpoint() -> None:
    """IPv6 connects time out everywhere, canaries too: IPv6 inconclusive or outage.local,
    never a block; the endpoint's verdict is IPv4's."""
    canaries = canaries_both_families()
    v4 = canaries_ok()["example.org"]
    canaries["example.org"] = v4.model_copy(
        update={
            "dns": (*v4.dns, dns("example.org", CANARY6, qtype="AAAA")),
            "tcp": (*v4.tcp, *twice(tcp(CANARY6, failure=Failure.TIMEOUT))),
        }
    )
    dead = twice(tcp(X6, failure=Failure.TIMEOUT))
    local = obs(*_resolved(), *_works(X_IP), *dead)
    verdict = classify(TWITTER, local, None, canaries)
    assert ("reachable", None) == (verdict.kind, verdict.method)
    assert verdict.families is not None
    assert verdict.families["ipv6"].kind in ("outage", "inconclusive")


def test_one_family_measured_says_which() -> None:
    """No AAAA anywhere: no families field, and a line saying IPv4 only and why."""
    local = obs(
        dns("twitter.com", X_IP),
        dns("twitter.com", X_IP, resolver=CONTROL_RESOLVER, control=True),
        *_works(X_IP),
    )
    verdict = classify(TWITTER, local, None, canaries_ok())
    assert ("reachable", None, None) == (verdict.kind, verdict.method, verdict.families)
    assert "families" not in verdict.model_dump(mode="json")
    assert verdict.evidence[-1].startswith("measured over IPv4 only: no resolver answered")


def test_aaaa_answered_but_no_ipv6_here() -> None:
    """AAAA answered, but no IPv6 connection was tried: measured over IPv4 only, no IPv6 here."""
    local = obs(*_resolved(), *_works(X_IP))
    verdict = classify(TWITTER, local, None, canaries_ok())
    assert verdict.families is None
    assert verdict.evidence[-1] == (
        "measured over IPv4 only: AAAA records answered, but this vantage has no IPv6"
    )


def test_aaaa_withheld_by_the_system_resolver_is_no_block() -> None:
    """The system resolver answers A but no AAAA while the control has both (a network or CDN
    node without IPv6): clients use IPv4, so it is no block; IPv6 is judged at the control's
    addresses."""
    local = obs(
        dns("twitter.com", X_IP),
        *twice(dns("twitter.com", failure=Failure.DNS_NO_ANSWER, qtype="AAAA")),
        dns("twitter.com", X_IP, resolver=CONTROL_RESOLVER, control=True),
        dns("twitter.com", X6, resolver=CONTROL_RESOLVER, control=True, qtype="AAAA"),
        *_works(X_IP),
        *_works(X6),
    )
    verdict = classify(TWITTER, local, None, canaries_both_families())
    assert ("reachable", None) == (verdict.kind, verdict.method)
    assert verdict.families is not None and verdict.families["ipv6"].kind == "reachable"
    assert any("answered A but no AAAA" in line for line in verdict.evidence)


def test_aaaa_nxdomain_is_judged_over_ipv6() -> None:
    """NXDOMAIN for AAAA while A answers (a censor's rule for the AAAA question): judged."""
    local = obs(
        dns("twitter.com", X_IP),
        *twice(dns("twitter.com", failure=Failure.DNS_NXDOMAIN, qtype="AAAA")),
        dns("twitter.com", X_IP, resolver=CONTROL_RESOLVER, control=True),
        dns("twitter.com", X6, resolver=CONTROL_RESOLVER, control=True, qtype="AAAA"),
        *_works(X_IP),
        *_works(X6),
    )
    verdict = classify(TWITTER, local, None, canaries_both_families())
    assert ("blocked", "dns.nxdomain") == (verdict.kind, verdict.method)
    assert verdict.families is not None and verdict.families["ipv4"].kind == "reachable"


def test_lab_prefix_is_not_a_bogon_but_canary_ip_is_v4() -> None:
    """The builders' IPv6 addresses stand in the lab's /48, routable as 198.18.0.0/15."""
    assert not is_bogon(X6) and not is_bogon(CANARY_IP)


def test_families_reach_the_measurement_and_the_result_row() -> None:
    """The families travel in the measurement (what the bundle carries to the collector) and in
    the run document's row; absent, they leave both as before."""
    from datetime import UTC, datetime

    from probe.model.measurement import Measurement, VantageInfo
    from probe.run import endpoint_result

    local = obs(*_resolved(), *_reset(X_IP), *_works(X6))
    verdict = classify(TWITTER, local, None, canaries_both_families())
    measurement = Measurement(
        measurement_id="m1",
        platform="x",
        target=TWITTER.url,
        domain=TWITTER.domain,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        runtime=1.0,
        vantage=VantageInfo(software="blockprobe/test"),
        local=local,
        verdict=verdict,
    )
    again = Measurement.model_validate_json(measurement.model_dump_json())
    assert again.verdict.families == verdict.families
    row = endpoint_result(again).model_dump(mode="json")
    assert row["families"]["ipv4"] == {"verdict": "blocked", "method": "tls.reset"}
    plain = measurement.model_copy(
        update={"verdict": verdict.model_copy(update={"families": None})}
    )
    assert "families" not in endpoint_result(plain).model_dump(mode="json")
    assert '"families"' not in plain.model_dump_json()


def test_the_table_says_which_family_is_blocked() -> None:
    """The human table adds "(IPv4 only)" to the method when IPv6 was reachable."""
    from probe.commands.run import family_note
    from probe.model import EndpointResult

    verdict = classify(TWITTER, obs(*_resolved(), *_reset(X_IP), *_works(X6)), None, {})
    row = EndpointResult(
        platform="x", target=TWITTER.url, domain=TWITTER.domain, verdict=verdict.kind,
        method=verdict.method, confidence=verdict.confidence, evidence=verdict.evidence,
        throughput=None, measurement_id="m1", families=verdict.families,
    )  # fmt: skip
    assert family_note(row) == " (IPv4 only)"
    assert family_note(row.model_copy(update={"families": None})) == ""
