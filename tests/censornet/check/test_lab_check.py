"""`blockprobe lab check` in a real lab: our probe and the naive example checker, two scenarios.

sni-reset (both get it right) and network-shutdown (an outage: the naive checker, with no control,
calls every endpoint blocked; our probe says outage.local).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from censornet.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
NAIVE = f"sh {EXAMPLES / 'naive_checker.sh'} | python3 {EXAMPLES / 'naive_adapter.py'}"
ONLY = "sni-reset,network-shutdown"


def _check(lab: Lab, tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any], ET.Element]:
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "blockprobe", "lab", "check", "--only", ONLY,
         "--report", str(report), "--junit", str(junit), *args],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BLOCKPROBE_LAB_PREFIX": lab.prefix},
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, json.loads(report.read_text()), ET.parse(junit).getroot()


def test_our_probe_gets_both_scenarios_right(session_lab: Lab, tmp_path: Path) -> None:
    """Exit 0, every endpoint right, in the shuffled order the seed gives."""
    code, stdout, report, junit = _check(session_lab, tmp_path, "--shuffle", "5")
    assert 0 == code, stdout
    assert (2, 2, 0) == (
        report["summary"]["scenarios"], report["summary"]["passed"],
        report["summary"]["false_positives"],
    )  # fmt: skip
    assert {"sni-reset", "network-shutdown"} == set(report["order"])
    shutdown = next(s for s in report["scenarios"] if s["id"] == "network-shutdown")
    assert {("outage", "outage.local")} == {
        (e["verdict"], e["method"]) for e in shutdown["endpoints"]
    }
    assert "0" == junit.get("failures") and "2" == junit.get("tests")


def test_the_naive_checker_mistakes_an_outage_for_blocking(
    session_lab: Lab, tmp_path: Path
) -> None:
    """The same scenarios through the adapter: sni-reset right, the outage nine false positives."""
    code, stdout, report, junit = _check(session_lab, tmp_path, "--probe-cmd", NAIVE)
    assert 1 == code, stdout
    status = {s["id"]: s["status"] for s in report["scenarios"]}
    assert {"sni-reset": "pass", "network-shutdown": "fail"} == status
    shutdown = report["scenarios"][1]
    assert 9 == shutdown["false_positives"] == len(shutdown["endpoints"])
    assert "1" == junit.get("failures")
    assert "[false positive]" in stdout


def test_lab_env_json_gives_a_probe_what_it_needs(session_lab: Lab) -> None:
    """The stable facts: version, resolvers, CA, helper, endpoints; every value a string."""
    done = subprocess.run(
        [sys.executable, "-m", "blockprobe", "lab", "env", "--json", "--vantage", "v2a"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "BLOCKPROBE_LAB_PREFIX": session_lab.prefix},
    )  # fmt: skip
    facts = json.loads(done.stdout)
    assert all(isinstance(v, str) for v in facts.values())
    assert ("1", "isp2", "198.18.20.53") == (
        facts["BLOCKPROBE_LAB_ENV_VERSION"], facts["BLOCKPROBE_ISP"], facts["BLOCKPROBE_RESOLVER"],
    )  # fmt: skip
    assert "https://x.com/" in facts["BLOCKPROBE_ENDPOINTS"].split(",")
    assert Path(facts["BLOCKPROBE_CA_FILE"]).read_text().startswith("-----BEGIN CERTIFICATE")
    assert facts["BLOCKPROBE_HELPER_URL"].startswith("http://")
