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


def test_demo_reports_the_confirmed_block_and_leaves_nothing_behind(tmp_path, capsys):
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
    assert isp1, rows
    # Two probes of isp1 agreed on the TLS reset within an hour: a confirmed block.
    assert any("tls" in r["confirmed_families"] and r["methods"].get("tls.reset") for r in isp1)
    if len(isp1) == 1:  # the demo ran within one hourly bucket (it did unless it crossed xx:00)
        (row,) = isp1
        assert ("blocked", "tls.reset", True) == (
            row["state"],
            row["dominant_method"],
            row["confirmed"],
        )
        assert 2 == row["probes"]
        incidents = json.loads((out / "incidents.json").read_text())["result"]
        assert any(
            i["asn"] == demo.ASNS["isp1"]
            and (i["kind"], i["method"], i["confirmed"]) == ("blocked", "tls.reset", True)
            for i in incidents
        ), incidents

    # the shutdown's bundles waited in the outbox and were drained afterwards
    assert {"v1a", "v1b"} == set(summary["drains"])
    assert all(line.startswith("sent 1,") for line in summary["drains"].values())
    verdicts = {(r["phase"], r["vantage"]): r["verdict"] for r in summary["outcomes"]}
    assert "blocked" == verdicts[("block #1", "v1a")]
    assert "outage" == verdicts[("shutdown", "v1b")]
    assert "throttled" == verdicts[("block #1", "v2a")]

    # nothing left behind: no namespaces, no lab state, no collector
    assert [] == namespaces(prefix)
    assert not (state_root() / prefix).exists()
    assert summary["collector_pid"] is not None
    assert not is_collector(summary["collector_pid"])
