"""Scoring results against a scenario's expectations: right, wrong, missing, false positives."""

from __future__ import annotations

from censornet.catalogue import get_scenario
from censornet.check.contract import ProbeResult
from censornet.check.scoring import score

ENDPOINTS = ("https://x.com/", "http://x.com/")


def test_verdict_and_method_must_both_be_accepted() -> None:
    """sni-reset: the right method passes, another blocking method does not."""
    scenario = get_scenario("sni-reset")
    expected = scenario.expected_for("https://x.com/")
    right = ProbeResult("https://x.com/", "blocked", expected.method[0])
    wrong = ProbeResult("https://t.co/", "blocked", "dns.nxdomain")
    scores = score(scenario, [right, wrong], ("https://x.com/", "https://t.co/"))
    assert [True, False] == [s.ok for s in scores]
    assert not scores[1].false_positive  # interference was expected there: a wrong method


def test_a_missing_endpoint_is_wrong() -> None:
    """An endpoint the probe did not answer counts, as wrong."""
    scores = score(
        get_scenario("clean"), [ProbeResult("https://x.com/", "reachable", None)], ENDPOINTS
    )
    assert [True, False] == [s.ok for s in scores]
    assert "no result" in scores[1].note and "-" == scores[1].got


def test_blocked_under_noise_is_a_false_positive() -> None:
    """A naive blocked verdict in a noise scenario is wrong and marked a false positive."""
    scenario = get_scenario("noise-loss")
    scores = score(
        scenario, [ProbeResult("https://x.com/", "blocked", "tcp.timeout")], ENDPOINTS[:1]
    )
    assert not scores[0].ok and scores[0].false_positive
    assert "blocked/tcp.timeout" == scores[0].got


def test_reachable_needs_a_null_method_and_the_vocabulary_is_enforced() -> None:
    """reachable with a method is not the contract; unknown verdicts or methods are named."""
    scenario = get_scenario("clean")
    scores = score(
        scenario,
        [
            ProbeResult("https://x.com/", "reachable", "tls.reset"),
            ProbeResult("http://x.com/", "fine", None),
            ProbeResult("https://t.co/", "blocked", "tls.weird"),
        ],
        ENDPOINTS,
    )
    assert [False, False, False] == [s.ok for s in scores]
    assert "'fine' is not in the contract" in scores[1].note
    assert "'tls.weird' is not in the contract" in scores[2].note
    assert "https://t.co/" == scores[2].target  # an extra target is scored too
