"""The classifier against the scenario table (tests/probe/classify_cases.py)."""

from __future__ import annotations

import pytest

from probe.classify import classify
from probe.model.verdict import METHODS
from tests.probe.classify_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    """Each scenario gets its expected verdict and method, with evidence and a sane confidence."""
    verdict = classify(case.plan, case.local, case.control, case.canaries, one_shot=case.one_shot)
    assert (case.verdict, case.method) == (verdict.kind, verdict.method), verdict.evidence
    assert verdict.evidence
    assert all(line for line in verdict.evidence)
    assert 0.0 < verdict.confidence <= 1.0


def test_every_contract_method_but_quic_has_a_case() -> None:
    """The table covers every method of the contract; the quic methods judge an endpoint's
    HTTP/3 result on its own and have their table in test_classify_quic.py."""
    covered = {c.method for c in CASES}
    assert set(METHODS) - {"quic.timeout", "quic.closed"} == covered - {None}


def test_an_offline_vantage_is_described_in_plain_words() -> None:
    """No route here is not called ICMP; 'N measured' lists N controls."""
    case = next(c for c in CASES if c.name == "outage_local_no_route")
    verdict = classify(case.plan, case.local, case.control, case.canaries)
    text = "\n".join(verdict.evidence)
    assert "ICMP" not in text and "network unreachable (no route)" in text
    line = next(e for e in verdict.evidence if "measured:" in e)
    count, listed = line.split("(", 1)[1].rstrip(")").split(" measured: ")
    assert int(count) == sum(int(part.split()[0]) for part in listed.split(", "))
