"""A one-minute tour of the mock censor: lab up, six scenarios, lab down (always, even on Ctrl-C).

For each scenario it prints what the technique is and where it comes from, then the same low-level
symptoms (``censornet.symptoms``) seen at a vantage point behind a censoring ISP and at the
uncensored control vantage, side by side. ``python -m censornet.demo`` (``make demo``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from censornet import topology
from censornet.catalogue import Scenario
from censornet.lab import Lab
from censornet.netns import LabError
from censornet.scenario import apply_scenario

TOUR: tuple[str, ...] = (
    "clean",
    "dns-nxdomain",
    "sni-reset",
    "sni-throttle-police",
    "network-shutdown",
    "platform-down",
)
VANTAGE = "v1a"
X_IP = topology.X_IPS[0]
WIDTH = 100


@dataclass(frozen=True)
class Probe:
    """One symptom to look at, with the arguments for each side (None: not applicable)."""

    label: str
    censored: tuple[str, ...]
    control: tuple[str, ...]


def probes(lab: Lab) -> list[Probe]:
    """The symptoms shown for every scenario."""
    isp = topology.vantage(VANTAGE).isp or "isp1"
    ca = ("--ca", str(lab.ca_file))
    quick = ("--timeout", "1.5")
    rate = ("--ip", X_IP, "--bytes", str(2 * 1024 * 1024), "--max-seconds", "2", "--idle", "1.5")
    tls_x = ("tls", X_IP, "x.com", *quick, *ca)
    return [
        Probe(
            "DNS A x.com",
            ("dns", topology.isp(isp).resolver, "x.com", *quick, "--window", "0"),
            ("dns", topology.CONTROL_RESOLVER_IP, "x.com", *quick, "--window", "0"),
        ),
        Probe(f"TLS SNI x.com to {X_IP}", tls_x, tls_x),
        Probe(
            f"TLS SNI example.org to {X_IP}",
            ("tls", X_IP, "example.org", *quick, *ca),
            ("tls", X_IP, "example.org", *quick, *ca),
        ),
        Probe(
            "GET https://x.com/",
            ("http", "https://x.com/", "--ip", X_IP, *quick),
            ("http", "https://x.com/", "--ip", X_IP, *quick),
        ),
        Probe(
            "download from x.com",
            ("rate", "https://x.com/big", *rate),
            ("rate", "https://x.com/big", *rate),
        ),
    ]


def observe(lab: Lab, rows: Sequence[Probe]) -> list[tuple[str, str, str]]:
    """Run every probe at both vantages at once; one (label, censored, control) line per probe."""
    running = []
    for row in rows:
        pair = []
        for vantage, args in ((VANTAGE, row.censored), (topology.CTRL, row.control)):
            argv = lab.command(vantage, [sys.executable, "-m", "censornet.symptoms", *args])
            pair.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        running.append((row.label, pair))
    lines = []
    for label, pair in running:
        shown = []
        for proc in pair:
            out, _ = proc.communicate(timeout=30)
            shown.append(describe(json.loads(out)) if out.strip() else "(probe failed)")
        lines.append((label, shown[0], shown[1]))
    return lines


def describe(result: dict[str, Any]) -> str:
    """A short human reading of one symptom result."""
    kind, outcome = result["kind"], result["outcome"]
    if kind == "dns":
        if outcome != "answer":
            return str(outcome)
        answers = ",".join(sorted(result["answers"])) or "no address"
        return f"{result['rcode']} {answers}"
    if kind == "tls":
        if outcome != "ok":
            return f"{outcome} at {result['stage']} ({result['ms']:.0f} ms)"
        issuer = (result["issuer"] or "").removeprefix("CN=").split(",")[0]
        return f"ok, {'valid' if result['valid'] else 'INVALID'} ({issuer})"
    if kind == "http":
        if outcome != "ok":
            return f"{outcome} at {result['stage']}"
        title = f" {result['title'][:26]!r}" if result["title"] else ""
        return f"{result['status']}{title} ({result['ms']:.0f} ms)"
    if kind == "rate":
        if result["status"] is not None and result["status"] >= 300:
            return f"HTTP {result['status']}"
        if result["bytes"] == 0:
            return str(outcome)
        return f"{result['kbps']:,.0f} kbit/s ({outcome}, {result['bytes'] // 1024} KiB)"
    return str(outcome)


def show(scenario: Scenario, index: int, lines: list[tuple[str, str, str]]) -> None:
    """Print one scenario: what it is, what is expected, what was seen."""
    expected = scenario.expected_for("https://x.com/")
    verdicts = "/".join(expected.verdict)
    methods = f" {'/'.join(expected.method)}" if expected.method else ""
    print(f"\n== {index}/{len(TOUR)} {scenario.id}: {scenario.title}")
    print(
        f"   category {scenario.category}; a probe must say for https://x.com/: {verdicts}{methods}"
    )
    body = " ".join(scenario.description.split())
    print(textwrap.fill(body, WIDTH, initial_indent="   ", subsequent_indent="   "))
    print(f"\n   {'symptom':36} {VANTAGE + ' (behind the censor)':40} ctrl (control vantage)")
    for label, censored, control in lines:
        print(f"   {label:36} {censored:40} {control}")


def main() -> int:
    """Bring a lab up, tour the scenarios, and always bring it down."""
    started = time.monotonic()
    print("bringing the lab up ...", flush=True)
    try:
        lab = Lab.up()
    except LabError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"lab {lab.prefix!r} up in {time.monotonic() - started:.1f} s ({lab.mode} mode)")
        rows = probes(lab)
        for index, scenario_id in enumerate(TOUR, start=1):
            scenario = apply_scenario(lab, scenario_id)
            show(scenario, index, observe(lab, rows))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        lab.down()
        print(f"\nlab down; the tour took {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
