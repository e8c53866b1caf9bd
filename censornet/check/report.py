"""``lab check`` results for people (a terminal table) and for programs (a JSON report).

The JSON report's ``format`` is ``blockprobe-lab-check/1``; fields are only ever added.
"""

from __future__ import annotations

from typing import Any

from censornet.check.runner import CheckRun, ScenarioResult
from censornet.check.scoring import EndpointScore

REPORT_FORMAT = "blockprobe-lab-check/1"
EVIDENCE_SHOWN = 160
MARK = {"pass": "ok", "fail": "WRONG", "error": "ERROR"}


def report_json(run: CheckRun) -> dict[str, Any]:
    """The whole run as a JSON-ready dict."""
    return {
        "format": REPORT_FORMAT,
        "started_at": run.started_at,
        "seconds": run.seconds,
        "probe_cmd": run.probe_cmd,
        "vantage": run.vantage,
        "isp": run.isp,
        "catalogue": run.catalogue,
        "shuffle_seed": run.seed,
        "order": [s.id for s in run.scenarios],
        "summary": {
            "scenarios": len(run.scenarios),
            "passed": run.passed,
            "failed": sum(s.status == "fail" for s in run.scenarios),
            "errors": sum(s.status == "error" for s in run.scenarios),
            "endpoints": sum(len(s.endpoints) for s in run.scenarios),
            "endpoints_right": sum(s.right for s in run.scenarios),
            "false_positives": sum(s.false_positives for s in run.scenarios),
            "all_right": run.all_right,
        },
        "scenarios": [_scenario_json(s) for s in run.scenarios],
    }


def _scenario_json(result: ScenarioResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "category": result.category,
        "scope": result.scope,
        "applied_to": result.applied_to,
        "vantage": result.vantage,
        "status": result.status,
        "seconds": result.seconds,
        "exit_code": result.exit_code,
        "error": result.error or None,
        "endpoints_right": result.right,
        "false_positives": result.false_positives,
        "endpoints": [_endpoint_json(e) for e in result.endpoints],
    }


def _endpoint_json(score: EndpointScore) -> dict[str, Any]:
    return {
        "target": score.target,
        "ok": score.ok,
        "verdict": score.verdict,
        "method": score.method,
        "expected_verdict": list(score.expected_verdicts),
        "expected_method": list(score.expected_methods),
        "false_positive": score.false_positive,
        "note": score.note or None,
        "evidence": list(score.evidence),
    }


def scenario_line(result: ScenarioResult) -> str:
    """One table row: id, category, outcome, endpoints right, seconds."""
    counted = f"{result.right}/{len(result.endpoints)}" if result.endpoints else "-"
    return (
        f"{result.id:32} {result.category:9} {MARK[result.status]:6} {counted:>6} "
        f"{result.seconds:7.1f} s"
    )


def scenario_details(result: ScenarioResult) -> list[str]:
    """Indented lines explaining what is wrong (nothing for a passing scenario)."""
    if result.status == "error":
        lines = [f"    {result.error}"]
        tail = result.stderr_tail.strip().splitlines()[-3:]
        return lines + [f"    stderr: {line}" for line in tail]
    lines = []
    for e in result.endpoints:
        if e.ok:
            continue
        lines.append(
            f"    {e.target}: got {e.got}, expected {e.expected}"
            + (f" ({e.note})" if e.note else "")
            + (" [false positive]" if e.false_positive else "")
        )
        if e.evidence:
            lines.append(f"      evidence: {e.evidence[0][:EVIDENCE_SHOWN]}")
    return lines


def table_header() -> str:
    """The table's column names."""
    return f"{'scenario':32} {'category':9} {'result':6} {'right':>6} {'time':>9}"


def summary_line(run: CheckRun) -> str:
    """The closing line: scenarios right, endpoints right, false positives, time."""
    endpoints = sum(len(s.endpoints) for s in run.scenarios)
    right = sum(s.right for s in run.scenarios)
    false_positives = sum(s.false_positives for s in run.scenarios)
    order = f", shuffled with seed {run.seed}" if run.seed is not None else ""
    return (
        f"{run.passed}/{len(run.scenarios)} scenarios right, {right}/{endpoints} endpoints, "
        f"{false_positives} false positives, in {run.seconds:.1f} s "
        f"(at {run.vantage} on {run.isp}{order})"
    )
