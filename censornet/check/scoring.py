"""Scoring a probe's results for one scenario against the catalogue's expectations.

Every endpoint the lab asks about must be answered; an answer is right when the scenario's first
matching expectation accepts its verdict and method. Results for other targets are scored too.
A wrong ``blocked``/``throttled`` where the scenario expects neither is a false positive: what a
probe without negative controls gets wrong on noise and outages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from censornet.catalogue import Scenario
from censornet.check.contract import ProbeResult
from probe.model.verdict import METHODS, SEVERITY

INTERFERENCE = frozenset({"blocked", "throttled"})


@dataclass(frozen=True)
class EndpointScore:
    """One endpoint: what the scenario accepts, what the probe said, and whether it is right."""

    target: str
    expected_verdicts: tuple[str, ...]
    expected_methods: tuple[str, ...]
    verdict: str | None  # None: the probe gave no result for this endpoint
    method: str | None
    ok: bool
    note: str = ""
    evidence: tuple[str, ...] = ()

    @property
    def false_positive(self) -> bool:
        """Interference reported where the scenario expects none."""
        return (
            not self.ok
            and self.verdict in INTERFERENCE
            and not INTERFERENCE & set(self.expected_verdicts)
        )

    @property
    def expected(self) -> str:
        """The accepted verdicts and methods, as ``blocked/tls.reset|tls.eof``."""
        verdicts = "|".join(self.expected_verdicts)
        methods = "|".join(self.expected_methods)
        return f"{verdicts}/{methods}" if methods else verdicts

    @property
    def got(self) -> str:
        """What the probe said, as ``verdict/method`` (``-`` when it said nothing)."""
        if self.verdict is None:
            return "-"
        return f"{self.verdict}/{self.method}" if self.method else self.verdict


def score(
    scenario: Scenario, results: Sequence[ProbeResult], endpoints: Sequence[str]
) -> list[EndpointScore]:
    """Each of ``endpoints`` (then any other target the probe reported) scored for ``scenario``."""
    by_target = {r.target: r for r in results}
    targets = [*endpoints, *(r.target for r in results if r.target not in endpoints)]
    return [_score_one(scenario, target, by_target.get(target)) for target in targets]


def _score_one(scenario: Scenario, target: str, result: ProbeResult | None) -> EndpointScore:
    expectation = scenario.expected_for(target)
    expected = (tuple(expectation.verdict), tuple(expectation.method))
    if result is None:
        return EndpointScore(target, *expected, None, None, False, "no result for this endpoint")
    note = ""
    if result.verdict not in SEVERITY:
        note = f"verdict {result.verdict!r} is not in the contract's vocabulary"
    elif result.method is not None and result.method not in METHODS:
        note = f"method {result.method!r} is not in the contract's vocabulary"
    ok = not note and expectation.accepts(result.verdict, result.method)
    return EndpointScore(
        target, *expected, result.verdict, result.method, ok, note, result.evidence[:3]
    )
