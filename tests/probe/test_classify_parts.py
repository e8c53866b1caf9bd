"""The classifier's building blocks: tries, bogons, blockpages, plateaus and summaries."""

from __future__ import annotations

import pytest

from probe.classify import classify
from probe.classify.bogons import is_bogon
from probe.classify.throttle import idle, plateau, stalled
from probe.classify.tries import settle
from probe.fingerprints.blockpages import differences, fingerprint, fingerprints
from probe.model.failures import Failure
from tests.probe.classify_cases import CASES
from tests.probe.observation_builders import http, transfer


def test_settle_needs_a_try() -> None:
    """Settling nothing is a programming error, not an outcome."""
    with pytest.raises(ValueError):
        settle([])


@pytest.mark.parametrize(
    ("failures", "outcome"),
    [
        ([None], "ok"),
        ([Failure.TIMEOUT], "once"),
        ([Failure.TIMEOUT, Failure.TIMEOUT], "failed"),
        ([Failure.TIMEOUT, None], "flaky"),
    ],
)
def test_settle_outcomes(failures: list[Failure | None], outcome: str) -> None:
    """Only repeated failures count as failed; one success makes the step work."""
    assert outcome == settle(failures).outcome


def test_settle_keeps_the_most_common_failure() -> None:
    """The failure reported is the one most tries saw."""
    tries = settle([Failure.CONNECTION_RESET, Failure.TIMEOUT, Failure.CONNECTION_RESET])
    assert (Failure.CONNECTION_RESET, 3, 3) == (tries.failure, tries.failed, tries.count)


@pytest.mark.parametrize(
    ("address", "bogon"),
    [
        ("10.10.34.34", True),
        ("127.0.0.1", True),
        ("0.0.0.0", True),
        ("192.168.1.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("not-an-address", True),
        ("198.18.100.10", False),  # the lab's benchmarking range is routable here
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
        ("::", True),
        ("fc00::5", True),
        ("fe80::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("::ffff:198.18.100.10", True),  # mapped, even into the lab's range
        ("2001:db8::10", True),  # documentation
        ("ff02::1", True),
        ("fd00:198:18:100::10", False),  # the lab's IPv6 prefix, as 198.18.0.0/15
        ("fd00:198:19::1", True),  # the next /48 is unique-local like any other
    ],
)
def test_bogons(address: str, bogon: bool) -> None:
    """Private, loopback and reserved answers are bogons; 198.18.0.0/15 and the lab's IPv6 /48
    are not."""
    assert bogon == is_bogon(address)


def test_fingerprints_have_unique_names() -> None:
    """Each fingerprint can be cited by its name."""
    assert len(fingerprints()) == len({fp.name for fp in fingerprints()})


def test_platform_page_matches_no_fingerprint() -> None:
    """A normal platform page is no blockpage."""
    assert None is fingerprint(http(headers={"Server": "nginx"}))


def test_differences_ignore_a_failed_control_page() -> None:
    """A control page that is a server error is no reference."""
    assert () == differences(http(title="Blocked", length=10), http(status=503))


def test_differences_need_length_and_title() -> None:
    """Only a different title with a different length makes a different page."""
    control = http(title="Same title here", length=1000)
    assert () == differences(http(title="Other words entirely", length=900), control)
    assert () == differences(http(title="Same title here", length=100), control)
    assert 2 == len(differences(http(title="Other words entirely", length=100), control))
    assert () == differences(http(title="x", length=100, failure=None), http(length=None))


def test_plateau_needs_samples() -> None:
    """Too few samples give no verdict on steadiness."""
    assert None is plateau(())
    assert None is plateau(((1.0, 100), (2.0, 200)))


def test_plateau_of_a_flat_transfer_has_no_rate() -> None:
    """A transfer that does not grow has no arrivals to fit, hence no plateau rate."""
    assert None is plateau(tuple((t / 10, 500) for t in range(1, 11)))


def test_plateau_ignores_retransmission_waits() -> None:
    """Flat samples between arrivals (a policer's drops, TCP backing off) do not break the fit."""
    samples = tuple((t / 10, 2000 * (t // 3)) for t in range(1, 31))
    fit = plateau(samples)
    assert fit is not None
    r2, kbps = fit
    assert r2 > 0.99
    assert 45 < kbps < 55  # 2000 bytes every 0.3 s


def test_plateau_of_a_policer_is_its_rate() -> None:
    """A steady 140 kbps transfer fits a line at 140 kbps."""
    fit = plateau(transfer(140).samples)
    assert fit is not None
    assert fit[0] > 0.99
    assert 140 == pytest.approx(fit[1], rel=0.02)


def test_idle_time() -> None:
    """Idle time is how long the end of an unfinished transfer saw no progress."""
    assert 2.0 == idle(transfer(2_000, stall_after=0))
    assert idle(transfer(2_000, stall_after=16_384)) == pytest.approx(1.9, abs=0.01)
    no_samples = transfer(2_000).model_copy(update={"samples": ()})
    assert None is idle(no_samples)
    assert not stalled(no_samples.model_copy(update={"completed": False}))
    assert not stalled(transfer(2_000))


def test_throughput_is_reported_whatever_the_verdict() -> None:
    """Every endpoint that moved data gets a throughput summary, with its control's rate."""
    for case in CASES:
        verdict = classify(case.plan, case.local, case.control, case.canaries)
        moved = any(t.bytes > 0 and not t.control for t in case.local.throughput)
        assert moved == (verdict.throughput is not None or verdict.throughput_up is not None)
    policer = next(c for c in CASES if c.name == "throttle_rate_download_policer")
    verdict = classify(policer.plan, policer.local, policer.control, policer.canaries)
    assert verdict.throughput is not None
    assert (140.0, 60_000.0) == (verdict.throughput.kbps, verdict.throughput.control_kbps)
    assert verdict.throughput.ratio is not None and verdict.throughput.ratio < 0.25
    assert verdict.throughput.samples


def test_upload_throttling_sets_throughput_up() -> None:
    """Upload throttling is reported in throughput_up; the download stays fast."""
    case = next(c for c in CASES if c.name == "throttle_rate_upload_only")
    verdict = classify(case.plan, case.local, case.control, case.canaries)
    assert verdict.throughput_up is not None and verdict.throughput is not None
    assert "up" == verdict.throughput_up.direction
    assert verdict.throughput.ratio is not None and verdict.throughput.ratio > 0.9
