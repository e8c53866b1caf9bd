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
from collections.abc import Iterator, Sequence
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


def run_probe(lab: Lab, vantage: str = "v1a", platforms: Sequence[str] = ("x",)) -> dict[str, Any]:
    """One `blockprobe run --platform P... --json` at ``vantage``; its single JSON document."""
    chosen = [arg for name in platforms for arg in ("--platform", name)]
    done = lab.run(
        vantage,
        [sys.executable, "-m", "blockprobe", "run", *chosen, "--json", "--config",
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
        http3 = result.get("http3")
        families = {f: v["verdict"] for f, v in (result.get("families") or {}).items()}
        if scenario.expect_not_blocked:
            ok = verdict != "blocked" and (http3 is None or http3["verdict"] != "blocked")
        else:
            expected = scenario.expected_for(result["target"])
            ok = expected.accepts(verdict, method, families) and expected.accepts_http3(http3)
        if not ok:
            evidence = "; ".join(result["evidence"] + (http3 or {}).get("evidence", []))[:500]
            got = f"{verdict}/{method}" + (
                f" http3 {http3['verdict']}/{http3['method']}" if http3 else ""
            )
            wrong.append(f"{result['target']}: {got} {families} ({evidence})")
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
    """The probe's verdict and method for every endpoint of the scenario's platforms (X unless
    it names others), and the HTTP/3 result where it names one, are what the scenario models."""
    apply_scenario(session_lab, scenario.id, isp="isp1" if scenario.scope == "isp" else None)
    document = run_probe(session_lab, platforms=scenario.platforms)
    assert [] == mismatches(scenario, document)
    if scenario.id == "ip-unreachable":
        # Rate-limited ICMP leaves some endpoints with silence only (tcp.timeout), never all.
        methods = {r["method"] for r in document["results"] if r["target"] is not None}
        assert "tcp.unreachable" in methods, methods
    summaries = {r["platform"] for r in document["results"] if r["target"] is None}
    assert summaries == set(scenario.platforms)


def test_other_isp_stays_clean_while_isp1_is_censored(session_lab: Lab) -> None:
    """A scenario applied to isp1 only leaves v2a (on isp2) reachable."""
    apply_scenario(session_lab, "sni-reset", isp="isp1")
    document = run_probe(session_lab, "v2a")
    assert {"reachable"} == {r["verdict"] for r in document["results"]}


QUIC_ONLY = [s for s in SCENARIOS if s.id in ("quic-udp-drop", "quic-sni-drop", "quic-sni-close")]


@pytest.mark.parametrize("scenario", QUIC_ONLY, ids=[s.id for s in QUIC_ONLY])
def test_a_quic_only_block_leaves_the_platform_reachable_and_partial(
    session_lab: Lab, scenario: Scenario
) -> None:
    """HTTP/3 blocked while HTTPS over TCP works: the YouTube summary is reachable, partial, says
    so in words, and carries the HTTP/3 method; the benign-SNI control decides the confidence."""
    apply_scenario(session_lab, scenario.id, isp="isp1")
    document = run_probe(session_lab, platforms=("youtube",))
    summary = next(r for r in document["results"] if r["target"] is None)
    assert (summary["verdict"], summary["method"], summary["partial"]) == ("reachable", None, True)
    method = scenario.expected_for("https://www.youtube.com/").http3_method[0]
    assert summary["http3"]["method"] == method
    line = f"https://www.youtube.com/: HTTP/3 blocked ({method}), HTTPS over TCP reachable"
    assert line in summary["evidence"]
    endpoint = next(r for r in document["results"] if r["target"] == "https://www.youtube.com/")
    benign_answered = scenario.id != "quic-udp-drop"
    assert (endpoint["http3"]["confidence"] > 0.8) is benign_answered, endpoint["http3"]


def test_the_probe_address_never_appears(session_lab: Lab) -> None:
    """Neither the vantage's own address nor its ISP gateway appears in the run document."""
    apply_scenario(session_lab, "sni-reset", isp="isp1")
    text = json.dumps(run_probe(session_lab))
    assert "198.18.11.2" not in text
    assert "blocked" in text
