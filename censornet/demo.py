"""The end-to-end demo: probes on two censoring ISPs upload signed bundles; reports show the blocks.

``python -m censornet.demo`` (``make demo``), about a minute on two cores:

1. the mock censor network comes up, and a collector is started in its uncensored control
   namespace, with its data (SQLite, log key) in ``out/collector``;
2. three probes, each with its own state directory (keys, outbox) and vantage labels, measure X
   with ``blockprobe run --platform x --upload``: v1a and v1b behind isp1 (PK, AS64501), v2a
   behind isp2 (PK, AS64502);
3. phases: clean; isp1 resets TLS connections naming X (SNI) while isp2 throttles X; isp1 shuts
   its network down (its probes' bundles wait in their outboxes), then the shutdown is lifted and
   the outboxes drained with ``blockprobe upload``; finally everything is clean again;
4. the incidents are printed beside the phases' start times, the dashboard written to
   ``out/dashboard.html`` (with the bundles' pages beside it), an evidence pack of the block to
   ``out/evidence-ID``, and the commands to explore the data further.

The collector's data stays in ``out/collector`` (``rm -rf out/collector`` removes it; the next
demo replaces it). The lab is always torn down and the collector stopped (by PID), also on
Ctrl-C, SIGTERM or error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from censornet import topology
from censornet.e2e import (
    PYTHON,
    Collector,
    ProbeOutcome,
    ProbeSite,
    drain_outbox,
    overlay_scenario,
    run_probes,
)
from censornet.lab import Lab
from censornet.netns import LabError
from censornet.scenario import apply_scenario, reset_lab
from probe.evidence.outbox import OUTBOX_FILE, Outbox

COUNTRY = "PK"
ASNS: dict[str, int] = {"isp1": 64501, "isp2": 64502}
VANTAGES: tuple[str, ...] = ("v1a", "v1b", "v2a")
PLATFORM = "x"
BACKOFF_WAIT_LIMIT = 45.0  # the outbox retries a deferred bundle 15-30 s after the first failure


@dataclass(frozen=True)
class Phase:
    """One phase of the demo: the scenario per ISP (absent: clean) and how many probe rounds."""

    name: str
    title: str
    scenarios: dict[str, str]
    rounds: int = 1
    note: str = ""


PHASES: tuple[Phase, ...] = (
    Phase("clean", "no interference anywhere", {}),
    Phase(
        "block",
        "isp1 resets TLS connections that name X; isp2 throttles X",
        {"isp1": "sni-reset", "isp2": "sni-throttle-police"},
        rounds=2,
        note="two rounds, as a daemon re-running every half hour would measure",
    ),
    Phase(
        "shutdown",
        "isp1 shuts its whole network down; isp2 still throttles X",
        {"isp1": "network-shutdown", "isp2": "sni-throttle-police"},
        note="isp1's probes cannot reach the collector: their bundles wait in the outbox",
    ),
)
RECOVERED = Phase("recovered", "no interference anywhere again", {})


@dataclass
class DemoResult:
    """What the demo did, also written to ``out/demo-summary.json``."""

    prefix: str
    out_dir: str
    collector_url: str = ""
    collector_pid: int | None = None
    dashboard: str = ""
    step: str = "starting"  # what the demo was doing (named in an error message)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    drains: dict[str, str] = field(default_factory=dict)
    phase_starts: dict[str, str] = field(default_factory=dict)  # phase: UTC start (ISO)
    data_dir: str = ""
    incidents: list[dict[str, Any]] = field(default_factory=list)
    evidence_pack: str = ""
    seconds: float = 0.0


def say(text: str = "") -> None:
    print(text, flush=True)


def sites(base: Path) -> list[ProbeSite]:
    """The demo's probes: one per vantage point, labelled with their ISP's ASN."""
    out = []
    for name in VANTAGES:
        isp = topology.vantage(name).isp or "isp1"
        out.append(ProbeSite(name, base / "probes" / name, COUNTRY, ASNS[isp], f"lab-{isp}"))
    return out


def apply_phase(lab: Lab, phase: Phase, attempts: int = 3) -> None:
    """Reset the lab and apply the phase's scenario at each ISP (retried on a busy machine)."""
    for attempt in range(1, attempts + 1):
        try:
            _apply_phase(lab, phase)
            return
        except LabError as exc:
            if attempt == attempts:
                raise
            say(f"   applying the scenarios failed ({exc}); retrying")
            time.sleep(1.0)


def _apply_phase(lab: Lab, phase: Phase) -> None:
    if not phase.scenarios:
        reset_lab(lab)
        return
    (first_isp, first_id), *rest = phase.scenarios.items()
    apply_scenario(lab, first_id, isp=first_isp)
    for isp, scenario_id in rest:
        overlay_scenario(lab, scenario_id, isp)


def show_outcome(outcome: ProbeOutcome) -> None:
    site = outcome.site
    verdict = outcome.verdict + (" (partial)" if outcome.partial else "")
    upload = outcome.upload_line.removeprefix("upload: ") or "(no upload line)"
    say(
        f"   {site.vantage:4} {site.isp:4}  X: {verdict:20} {outcome.method or '-':15}"
        f" {outcome.endpoint_text():34} {outcome.seconds:4.1f} s"
    )
    say(f"        {upload}")
    if outcome.verdict == "error":
        say(f"        probe failed (exit {outcome.returncode}): {outcome.stderr_tail}")


def wait_until_due(states: Sequence[Path]) -> float:
    """Wait (at most BACKOFF_WAIT_LIMIT) until every queued bundle is due again; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < BACKOFF_WAIT_LIMIT:
        waiting = 0
        for state in states:
            with Outbox(state / OUTBOX_FILE) as box:
                stats = box.stats()
            waiting += stats.pending - stats.due
        if waiting == 0:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def report(argv: Sequence[str], timeout: float = 120.0) -> str:
    """Run ``blockprobe report ...`` on this machine; its output (raises on failure)."""
    done = subprocess.run(
        [PYTHON, "-m", "blockprobe", "report", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"blockprobe report {argv[0]} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def summary_table(result: DemoResult) -> None:
    """What each probe saw in each phase."""
    say(f"   {'phase':16} {'vantage':7} {'ISP (AS)':14} {'X verdict':22} {'method':15} endpoints")
    for row in result.outcomes:
        verdict = row["verdict"] + (" (partial)" if row["partial"] else "")
        isp = f"{row['isp']} ({row['asn']})"
        say(
            f"   {row['phase']:16} {row['vantage']:7} {isp:14} {verdict:22}"
            f" {row['method'] or '-':15} {row['endpoints']}"
        )


def run_phase(
    lab: Lab, phase: Phase, number: int, probes: list[ProbeSite], url: str, result: DemoResult
) -> None:
    """Apply a phase and run its rounds of probes."""
    result.step = f"phase {phase.name}"
    apply_phase(lab, phase)
    result.phase_starts[phase.name] = datetime.now(UTC).isoformat()
    scenarios = ", ".join(f"{i}: {phase.scenarios.get(i, 'clean')}" for i in ASNS)
    say(f"\n== phase {number}/{len(PHASES) + 1} {phase.name}: {phase.title}")
    say(f"   started {result.phase_starts[phase.name][11:19]} UTC; scenarios: {scenarios}")
    if phase.note:
        say(f"   ({phase.note})")
    for round_number in range(1, phase.rounds + 1):
        if phase.rounds > 1:
            say(f"   round {round_number}/{phase.rounds}")
        for outcome in run_probes(lab, probes, url, PLATFORM):
            show_outcome(outcome)
            label = phase.name + (f" #{round_number}" if phase.rounds > 1 else "")
            result.outcomes.append(_row(label, outcome))


def run_demo(lab: Lab, work: Path, out_dir: Path, result: DemoResult) -> None:
    """Everything between lab up and lab down (the caller tears down)."""
    data = (out_dir / "collector").resolve()
    if data.exists():
        say(f"replacing the previous demo's collector data in {data}")
        shutil.rmtree(data)
    collector = Collector(lab, data)
    result.data_dir = str(data)
    result.collector_url = collector.url
    try:
        result.step = "starting the collector"
        collector.start()
        result.collector_pid = collector.process.pid if collector.process else None
        say(
            f"collector up at {collector.url} in the control namespace (data: {collector.data_dir})"
        )
        probes = sites(work)
        for site in probes:
            say(
                f"probe {site.vantage}: behind {site.isp}, labelled {site.country} AS{site.asn};"
                f" state in {site.state_dir}"
            )
        for number, phase in enumerate(PHASES, start=1):
            run_phase(lab, phase, number, probes, collector.url, result)
        say("\n== the shutdown is lifted: isp1's probes drain their outboxes (blockprobe upload)")
        result.step = "draining the outboxes"
        reset_lab(lab)
        held = [s for s in probes if _pending(s.state_dir)]
        if held:
            waited = wait_until_due([s.state_dir for s in held])
            if waited >= 1:
                say(f"   waited {waited:.0f} s for the outbox's retry backoff")
            for site in held:
                line = drain_outbox(lab, site, collector.url)
                result.drains[site.vantage] = line
                say(f"   {site.vantage}: {line}")
        else:
            say("   (no bundle was waiting)")
        run_phase(lab, RECOVERED, len(PHASES) + 1, probes, collector.url, result)
    finally:
        collector.stop()
    say(f"collector stopped (pid {result.collector_pid})")

    write_reports(str(collector.data_dir), out_dir, result)


def write_reports(data_dir: str, out_dir: Path, result: DemoResult) -> None:
    """Incidents beside the phases, the dashboard, an evidence pack, and what to run next."""
    result.step = "writing the reports"
    say("\n== what each probe saw")
    summary_table(result)
    say("\n== incidents (blockprobe report incidents), at the measurements' own times")
    say(indent(report(["incidents", "--data-dir", data_dir])))
    report(["incidents", "--data-dir", data_dir, "--format", "json"]
           + ["--output", str(out_dir / "incidents.json")])  # fmt: skip
    report(["reachability", "--data-dir", data_dir, "--format", "json"]
           + ["--output", str(out_dir / "reachability.json")])  # fmt: skip
    found = json.loads((out_dir / "incidents.json").read_text())["result"]
    result.incidents = found
    say("   phase starts (UTC): " + ", ".join(
        f"{name} {start[11:19]}" for name, start in result.phase_starts.items()
    ))  # fmt: skip
    for inc in found:
        phase = phase_of(inc["started_at"], result.phase_starts)
        what = f"{inc['platform']} {inc['kind']}" if inc["platform"] else "network outage"
        say(
            f"   {what} on AS{inc['asn']} ({inc['network']}): first failing"
            f" measurement {inc['started_at'][11:23]}, in phase {phase}"
        )
    dashboard = out_dir / "dashboard.html"
    report(["dashboard", "--data-dir", data_dir, "--output", str(dashboard)])
    result.dashboard = str(dashboard.resolve())
    say(f"\ndashboard written to {result.dashboard} (bundle pages beside it, in bundles/)")
    block = next((i for i in found if i["kind"] == "blocked"), found[0] if found else None)
    if block is not None:
        pack = out_dir / f"evidence-{block['id']}"
        if pack.exists():
            shutil.rmtree(pack)
        report(["evidence", block["id"], "--data-dir", data_dir, "--output", str(pack)])
        result.evidence_pack = str(pack)
        say(f"evidence pack of the {block['kind']} incident {block['id']} written to {pack}")
    next_commands(data_dir, out_dir, block["id"] if block else "INCIDENT_ID")


def phase_of(moment: str, starts: dict[str, str]) -> str:
    """The phase running at ``moment`` (ISO times compare as text when both are UTC)."""
    stamp = moment.replace("Z", "+00:00")
    current = "before the first phase"
    for name, start in starts.items():
        if start <= stamp:
            current = name
    return current


def next_commands(data_dir: str, out_dir: Path, incident: str) -> None:
    """What to run next on the data the demo left."""
    bp = f"{Path(PYTHON).parent}/blockprobe"
    pack = out_dir / f"evidence-{incident}"
    say("\n== explore the data the demo left (the collector's data is in " + data_dir + ")")
    say(f"   {bp} report incidents --data-dir {data_dir}")
    say(f"   {bp} report reachability --data-dir {data_dir} --country pk --format csv")
    say(f"   {bp} report dashboard --data-dir {data_dir} --output {out_dir}/dashboard.html")
    say(f"   {bp} report evidence {incident} --data-dir {data_dir} --output {pack}-2")
    say(f"   {bp} verify {pack}")
    say(f"   {bp} collector serve --data-dir {data_dir} --port 8480")
    say("      then open http://127.0.0.1:8480/dashboard and subscribe to")
    say("      http://127.0.0.1:8480/feeds/incidents.atom?platform=x&country=PK")
    say(f"   remove it all: rm -rf {data_dir} {out_dir}/bundles {out_dir}/evidence-*")


def _pending(state_dir: Path) -> int:
    with Outbox(state_dir / OUTBOX_FILE) as box:
        return box.stats().pending


def _row(phase: str, outcome: ProbeOutcome) -> dict[str, Any]:
    return {
        "phase": phase,
        "vantage": outcome.site.vantage,
        "isp": outcome.site.isp,
        "asn": outcome.site.asn,
        "verdict": outcome.verdict,
        "method": outcome.method,
        "partial": outcome.partial,
        "endpoints": outcome.endpoint_text(),
        "upload": outcome.upload_line,
        "seconds": round(outcome.seconds, 2),
    }


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m censornet.demo", description=__doc__)
    parser.add_argument("--prefix", help="Lab namespace prefix (default $BLOCKPROBE_LAB_PREFIX).")
    parser.add_argument("--out", type=Path, default=Path("out"), help="Output directory.")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="Keep the probes' state directories (the collector's data stays in OUT/collector).",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Bring a lab up, run the demo, and always bring everything down."""
    args = parse_args(argv)
    started = time.monotonic()
    prefix = args.prefix or topology.lab_prefix()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(prefix=prefix, out_dir=str(out_dir.resolve()))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="blockprobe-demo-"))
    work.chmod(0o755)  # the probes and the collector run as other processes in the lab
    status = 0
    lab: Lab | None = None
    say("blockprobe end-to-end demo: 3 probes on 2 ISPs -> signed bundles -> collector -> reports")
    try:
        say(f"bringing the lab {prefix!r} up ...")
        result.step = "bringing the lab up"
        lab = Lab.up(prefix)
        say(f"lab up in {time.monotonic() - started:.1f} s ({lab.mode} mode)")
        run_demo(lab, work, out_dir, result)
    except KeyboardInterrupt:
        print(f"\ninterrupted while {result.step}: tearing down", file=sys.stderr, flush=True)
        status = 130
    except (LabError, OSError, subprocess.SubprocessError, ValueError) as exc:
        print(
            f"demo failed while {result.step}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        status = 2
    finally:
        if lab is not None:  # (a failed Lab.up has torn down what it built)
            lab.down()
        if not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        result.seconds = round(time.monotonic() - started, 1)
        (out_dir / "demo-summary.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
        say(f"lab down; the demo took {result.seconds:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
