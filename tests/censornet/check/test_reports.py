"""The JSON report and the JUnit XML of a check run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from censornet.catalogue import get_scenario
from censornet.check.contract import ProbeResult
from censornet.check.junit import junit_xml
from censornet.check.report import report_json, summary_line
from censornet.check.runner import CheckRun, ScenarioResult
from censornet.check.scoring import score


def _run() -> CheckRun:
    run = CheckRun(
        "probe --json",
        "v1a",
        "isp1",
        "packaged",
        seed=7,
        started_at="2026-01-01T00:00:00+00:00",
        seconds=9.5,
    )
    good = ScenarioResult("clean", "No interference", "clean", "isp", "isp1", "v1a", 3.0, 0, "pass")
    good.endpoints = score(
        get_scenario("clean"),
        [ProbeResult("https://x.com/", "reachable", None)],
        ["https://x.com/"],
    )
    wrong = ScenarioResult("noise-loss", "Loss", "noise", "isp", "isp1", "v1a", 4.0, 0, "fail")
    wrong.endpoints = score(
        get_scenario("noise-loss"),
        [ProbeResult("https://x.com/", "blocked", "tcp.timeout")],
        ["https://x.com/"],
    )
    broken = ScenarioResult("sni-reset", "Reset", "block", "isp", "isp1", "v1a", 2.5, 1, "error")
    broken.error = "output is not the verdict contract: no output on stdout"
    broken.stderr_tail = "Traceback \x1b[31m boom"
    run.scenarios = [good, wrong, broken]
    return run


def test_json_report_summarises_and_details_each_scenario() -> None:
    """Counts, order, seed and per-endpoint expectations are in the report."""
    report = json.loads(json.dumps(report_json(_run())))
    assert "blockprobe-lab-check/1" == report["format"]
    assert ["clean", "noise-loss", "sni-reset"] == report["order"]
    summary = report["summary"]
    assert (3, 1, 1, 1, 1, False) == (
        summary["scenarios"], summary["passed"], summary["failed"], summary["errors"],
        summary["false_positives"], summary["all_right"],
    )  # fmt: skip
    endpoint = report["scenarios"][1]["endpoints"][0]
    assert ("blocked", "tcp.timeout", True) == (
        endpoint["verdict"],
        endpoint["method"],
        endpoint["false_positive"],
    )
    assert ["reachable", "inconclusive"] == endpoint["expected_verdict"]
    assert 7 == report["shuffle_seed"]
    assert "1/3 scenarios right" in summary_line(_run())


def test_junit_xml_has_a_case_per_scenario_with_failures_and_errors() -> None:
    """CI systems see one test case per scenario; wrong is a failure, no contract an error."""
    root = ET.fromstring(junit_xml(_run()))
    suite = root.find("testsuite")
    assert suite is not None
    assert ("3", "1", "1") == (suite.get("tests"), suite.get("failures"), suite.get("errors"))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert "lab.noise" == cases["noise-loss"].get("classname")
    assert cases["clean"].find("failure") is None
    failure = cases["noise-loss"].find("failure")
    assert failure is not None and "got blocked/tcp.timeout" in (failure.text or "")
    error = cases["sni-reset"].find("error")
    assert error is not None and "no output" in (error.get("message") or "")
    system_err = cases["sni-reset"].find("system-err")
    assert system_err is not None and "\ufffd" in (system_err.text or "")  # ESC is not XML
