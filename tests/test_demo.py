"""The end-to-end demo (``python -m censornet.demo``) against a lab of its own: reports, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from censornet import demo
from censornet.lab import state_root

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.startswith(f"{prefix}-")]


def is_collector(pid: int) -> bool:
    """Whether ``pid`` is (still) a collector process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return b"collector" in cmdline and b"serve" in cmdline


def test_demo_reports_each_phase_as_its_own_incident_and_leaves_its_data(tmp_path, capsys):
    prefix = f"bpd{os.getpid()}"
    out = tmp_path / "out"
    status = demo.main(["--prefix", prefix, "--out", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert 0 == status, printed[-3000:] + captured.err[-3000:]

    assert (out / "dashboard.html").stat().st_size > 0
    assert str((out / "dashboard.html").resolve()) in printed
    summary = json.loads((out / "demo-summary.json").read_text())

    rows = json.loads((out / "reachability.json").read_text())["result"]
    isp1 = [r for r in rows if r["asn"] == demo.ASNS["isp1"] and r["platform"] == "x"]
    # Two probes of isp1 agreed on the TLS reset within an hour: a confirmed block.
    assert any("tls" in r["confirmed_families"] and r["methods"].get("tls.reset") for r in isp1)

    # Each phase is its own incident, at the measurements' own times, all ended by the recovery.
    incidents = json.loads((out / "incidents.json").read_text())["result"]
    starts = summary["phase_starts"]
    got = {(i["platform"], i["asn"], i["kind"], i["method"]): i for i in incidents}
    assert set(got) == {
        ("x", demo.ASNS["isp1"], "blocked", "tls.reset"),
        ("x", demo.ASNS["isp2"], "throttled", "throttle.rate"),
        (None, demo.ASNS["isp1"], "outage", "outage.local"),
    }, incidents
    block = got[("x", demo.ASNS["isp1"], "blocked", "tls.reset")]
    throttle = got[("x", demo.ASNS["isp2"], "throttled", "throttle.rate")]
    outage = got[(None, demo.ASNS["isp1"], "outage", "outage.local")]
    assert block["confirmed"] and outage["confirmed"] and not throttle["confirmed"]
    for inc, last in ((block, "block"), (throttle, "shutdown")):
        assert demo.phase_of(inc["started_at"], starts) == "block"
        assert demo.phase_of(inc["last_seen_at"], starts) == last
        assert demo.phase_of(inc["first_good_after"], starts) == "recovered"
    assert demo.phase_of(outage["started_at"], starts) == "shutdown"
    assert demo.phase_of(outage["ended_at"], starts) == "recovered"

    # The data stays to explore: the collector's, an evidence pack, and the commands to run.
    assert (out / "collector" / "collector.db").is_file()
    pack = Path(summary["evidence_pack"])
    assert (pack / "README.md").is_file() and list((pack / "bundles").glob("*.json"))
    assert f"verify {pack}" in printed and "report incidents --data-dir" in printed
    assert "rm -rf" in printed and "feeds/incidents.atom" in printed

    # the shutdown's bundles waited in the outbox and were drained afterwards
    assert {"v1a", "v1b"} == set(summary["drains"])
    assert all(line.startswith("sent 1,") for line in summary["drains"].values())
    verdicts = {(r["phase"], r["vantage"]): r["verdict"] for r in summary["outcomes"]}
    assert "blocked" == verdicts[("block #1", "v1a")]
    assert "outage" == verdicts[("shutdown", "v1b")]
    assert "throttled" == verdicts[("block #1", "v2a")]
    assert {("recovered", v) for v in ("v1a", "v1b", "v2a")} <= set(verdicts)

    # nothing else left behind: no namespaces, no lab state, no collector running
    assert [] == namespaces(prefix)
    assert not (state_root() / prefix).exists()
    assert summary["collector_pid"] is not None
    assert not is_collector(summary["collector_pid"])
