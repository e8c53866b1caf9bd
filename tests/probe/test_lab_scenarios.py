"""`blockprobe run --json` at a vantage point, for every scenario of the catalogue.

Each scenario is applied to isp1 (or globally), the probe runs at v1a with the lab's config, and
every endpoint's verdict AND method must be one the scenario expects. Noise scenarios must never
end `blocked`. The control helper in the ctrl namespace answers the probe's comparisons. The whole
catalogue runs once per way the lab's origins answer a name they do not host (their default
certificate, their own certificate, a TLS alert): the verdicts must not depend on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from censornet.catalogue import Scenario, load_catalogue
from censornet.lab import Lab
from censornet.origins import UNKNOWN_SNI_BEHAVIOURS, OriginSettings, UnknownSni
from censornet.scenario import apply_scenario

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_CONFIG = Path(__file__).resolve().parents[2] / "config" / "lab" / "probe-lab.toml"
SCENARIOS = load_catalogue()


def run_probe(lab: Lab, vantage: str = "v1a") -> dict[str, Any]:
    """One `blockprobe run --platform x --json` at ``vantage``; its single JSON document."""
    done = lab.run(
        vantage,
        [sys.executable, "-m", "blockprobe", "run", "--platform", "x", "--json", "--config",
         str(LAB_CONFIG)],
        env={"BLOCKPROBE_CA_FILE": str(lab.ca_file)},
        timeout=120,
        check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def mismatches(scenario: Scenario, document: dict[str, Any]) -> list[str]:
    """Endpoints whose verdict or method the scenario does not accept."""
    wrong = []
    for result in document["results"]:
        if result["target"] is None:
            continue
        verdict, method = result["verdict"], result["method"]
        if scenario.expect_not_blocked:
            ok = verdict != "blocked"
        else:
            ok = scenario.expected_for(result["target"]).accepts(verdict, method)
        if not ok:
            evidence = "; ".join(result["evidence"])[:400]
            wrong.append(f"{result['target']}: {verdict}/{method} ({evidence})")
    return wrong


@pytest.fixture(scope="module", params=UNKNOWN_SNI_BEHAVIOURS)
def origins(request: pytest.FixtureRequest, session_lab: Lab) -> Iterator[UnknownSni]:
    """Each way a real origin answers a name it does not host, in turn (see censornet.origins)."""
    behaviour: UnknownSni = request.param
    session_lab.set_origins(OriginSettings(unknown_sni=behaviour))
    yield behaviour
    session_lab.set_origins(OriginSettings())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_probe_verdicts_match_the_scenario(
    session_lab: Lab, origins: UnknownSni, scenario: Scenario
) -> None:
    """The probe's verdict and method for every X endpoint are what the scenario models."""
    apply_scenario(session_lab, scenario.id, isp="isp1" if scenario.scope == "isp" else None)
    document = run_probe(session_lab)
    assert [] == mismatches(scenario, document)
    assert any(r["target"] is None and r["platform"] == "x" for r in document["results"])


def test_other_isp_stays_clean_while_isp1_is_censored(session_lab: Lab) -> None:
    """A scenario applied to isp1 only leaves v2a (on isp2) reachable."""
    apply_scenario(session_lab, "sni-reset", isp="isp1")
    document = run_probe(session_lab, "v2a")
    assert {"reachable"} == {r["verdict"] for r in document["results"]}


def test_the_probe_address_never_appears(session_lab: Lab) -> None:
    """Neither the vantage's own address nor its ISP gateway appears in the run document."""
    apply_scenario(session_lab, "sni-reset", isp="isp1")
    text = json.dumps(run_probe(session_lab))
    assert "198.18.11.2" not in text
    assert "blocked" in text
