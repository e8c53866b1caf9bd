"""Pieces of the end-to-end demo: a collector in the lab, probes at vantage points, ISP scenarios.

``Collector`` runs ``blockprobe collector serve`` in the control namespace (SQLite in a data
directory) and stops it by PID. ``ProbeSite`` is one probe at one vantage point, with its own state
directory (keys, outbox) and vantage labels; ``run_probes`` runs ``blockprobe run --upload`` at
several sites at once and parses what each printed. ``overlay_scenario`` adds a scenario to one
ISP without resetting the others, so two ISPs can censor differently at the same time
(``censornet.scenario.apply_scenario`` resets every ISP first).
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from censornet import topology
from censornet.catalogue import Scenario, get_scenario
from censornet.lab import LAB_PROBE_CONFIG, Lab
from censornet.netns import LabError
from censornet.policy import write_policy
from censornet.processes import Tracked
from censornet.scenario import interfaces, next_generation, restore_input, vantage_interfaces
from censornet.servers.injector import POLL_INTERVAL as INJECTOR_POLL_INTERVAL

COLLECTOR_PORT = 8481
# The demo collector enrols keys by token (its default policy: a token, or an admin's approval).
# Each demo volunteer has a token of its own, as a real deployment would hand them out: keys
# enrolled with one token count as one voucher, and a confirmation needs two.


def enrol_token(vantage: str) -> str:
    """The enrolment token of the demo volunteer at ``vantage``."""
    return f"demo-volunteer-{vantage}"


COLLECTOR_READY_TIMEOUT = 30.0
PROBE_TIMEOUT = 90.0
PYTHON = sys.executable


# --- the collector --------------------------------------------------------------------------


@dataclass
class Collector:
    """``blockprobe collector serve`` in the lab's control namespace."""

    lab: Lab
    data_dir: Path
    port: int = COLLECTOR_PORT
    process: Tracked | None = None
    _popen: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return topology.vantage(topology.CTRL).address

    @property
    def url(self) -> str:
        """The collector's URL as probes in the lab reach it."""
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "collector.log"

    def start(self) -> None:
        """Start the collector and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            PYTHON, "-m", "blockprobe", "collector", "serve", "--host", self.host,
            "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        for vantage in topology.VANTAGES:
            argv += ["--enroll-token", enrol_token(vantage.name)]
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.lab.command(topology.CTRL, argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.process = Tracked.of("collector", self._popen.pid)
        self._wait_ready()

    def _wait_ready(self) -> None:
        check = (
            "import socket, sys\n"
            f"try: socket.create_connection(('{self.host}', {self.port}), 0.5)\n"
            "except OSError: sys.exit(1)\n"
        )
        deadline = time.monotonic() + COLLECTOR_READY_TIMEOUT
        while self.lab.run(topology.CTRL, [PYTHON, "-c", check], check=False).returncode:
            if self.process is None or not self.process.alive():
                raise LabError(f"the collector exited during start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"the collector was not ready in {COLLECTOR_READY_TIMEOUT:.0f} s")
            time.sleep(0.2)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the collector (SIGTERM, then SIGKILL), by the PID it was started with."""
        if self.process is not None:
            self.process.stop(grace=5.0)
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


# --- scenarios per ISP ----------------------------------------------------------------------


def overlay_scenario(lab: Lab, scenario_id: str, isp: str) -> Scenario:
    """Apply ``scenario_id`` to ``isp`` only, leaving the other ISPs' scenarios in place.

    Only ISP-scoped scenarios: the ISP's censor chains, qdiscs, connection tracking and server
    policy are replaced by the scenario's (as ``apply_scenario`` does for all of them).
    """
    scenario = get_scenario(scenario_id)
    if scenario.scope != "isp":
        raise ValueError(f"scenario {scenario_id!r} is {scenario.scope}, not per ISP")
    role = topology.isp(isp).name
    ns = shlex.quote(lab.ns(role))
    generation = next_generation(lab.state_dir)
    lines = [
        f"ip netns exec {ns} iptables-restore --noflush <<'BP_RULES'\n"
        f"{restore_input(scenario, generation)}BP_RULES"
    ]
    lines += [
        f"ip netns exec {ns} tc qdisc del dev {dev} root 2>/dev/null || true"
        for dev in interfaces(role)
    ]
    for dev in vantage_interfaces(role):
        lines += [
            f"ip netns exec {ns} tc {command.replace('{dev}', dev)}" for command in scenario.tc
        ]
    lines.append(f"ip netns exec {ns} conntrack -F >/dev/null 2>&1 || true")
    policy = scenario.policy_for(role)
    write_policy(lab.state_dir, role, policy)
    lab.shell.script("\n".join(lines) + "\n", timeout=30)
    if policy.inject or policy.rst_inject:
        time.sleep(INJECTOR_POLL_INTERVAL + 0.1)  # the on-path injectors poll their policy
    record = lab.state_dir / "scenario" / f"{role}.json"
    record.write_text(json.dumps({"id": scenario.id, "scope": scenario.scope}) + "\n")
    return scenario


# --- probes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSite:
    """One probe: a vantage point, its own state directory and the labels it reports."""

    vantage: str
    state_dir: Path
    country: str
    asn: int
    network: str

    @property
    def isp(self) -> str:
        return topology.vantage(self.vantage).isp or "-"


@dataclass(frozen=True)
class ProbeOutcome:
    """What one ``blockprobe run --upload`` printed, read back."""

    site: ProbeSite
    returncode: int
    verdict: str  # the platform summary's verdict, or "error"
    method: str | None
    partial: bool
    endpoints: dict[str, int]  # verdict -> endpoints
    upload_line: str  # the one-line upload summary from stderr
    seconds: float
    stderr_tail: str = ""

    def endpoint_text(self) -> str:
        order = ("blocked", "throttled", "outage", "inconclusive", "reachable")
        return ", ".join(f"{self.endpoints[k]} {k}" for k in order if self.endpoints.get(k))


@dataclass
class _Running:
    site: ProbeSite
    popen: subprocess.Popen[str]
    started: float
    out: str = field(default="")
    err: str = field(default="")


def probe_argv(lab: Lab, site: ProbeSite, collector_url: str, platform: str) -> list[str]:
    """``blockprobe run --platform P --json --upload ...`` for ``site``."""
    return [
        PYTHON, "-m", "blockprobe", "run", "--platform", platform, "--json", "--upload",
        "--config", str(LAB_PROBE_CONFIG), "--ca-file", str(lab.ca_file),
        "--collector", collector_url, "--state-dir", str(site.state_dir),
        "--country", site.country, "--asn", str(site.asn), "--network", site.network,
        "--enroll-token", enrol_token(site.vantage),
    ]  # fmt: skip


def run_probes(
    lab: Lab, sites: Sequence[ProbeSite], collector_url: str, platform: str = "x"
) -> list[ProbeOutcome]:
    """Run one probe at each site, all at once; kills the ones still running on any error."""
    running: list[_Running] = []
    try:
        for site in sites:
            argv = lab.command(site.vantage, probe_argv(lab, site, collector_url, platform))
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            running.append(_Running(site, popen, time.monotonic()))
        with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
            return list(pool.map(_collect, running))
    finally:
        for item in running:
            stop_popen(item.popen)


def _collect(item: _Running) -> ProbeOutcome:
    item.out, item.err = item.popen.communicate(timeout=PROBE_TIMEOUT)
    return _outcome(item, time.monotonic() - item.started)


def stop_popen(popen: subprocess.Popen[Any]) -> None:
    """Stop a child we started, by its PID, if it is still running."""
    if popen.poll() is not None:
        return
    try:
        popen.send_signal(signal.SIGTERM)
        popen.wait(timeout=3.0)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=3.0)
    except ProcessLookupError:
        pass


def _outcome(item: _Running, seconds: float) -> ProbeOutcome:
    upload = next(
        (line for line in reversed(item.err.splitlines()) if line.startswith("upload:")), ""
    )
    tail = "\n".join(item.err.strip().splitlines()[-5:])
    try:
        document = json.loads(item.out)
        results = document["results"]
    except (ValueError, KeyError, TypeError):
        return ProbeOutcome(
            item.site, item.popen.returncode, "error", None, False, {}, upload, seconds, tail
        )
    summary: dict[str, Any] = next((r for r in results if r.get("target") is None), {})
    counts = Counter(str(r["verdict"]) for r in results if r.get("target") is not None)
    return ProbeOutcome(
        site=item.site,
        returncode=item.popen.returncode,
        verdict=str(summary.get("verdict", "error")),
        method=summary.get("method"),
        partial=bool(summary.get("partial")),
        endpoints=dict(counts),
        upload_line=upload,
        seconds=seconds,
        stderr_tail=tail,
    )


def drain_outbox(lab: Lab, site: ProbeSite, collector_url: str) -> str:
    """``blockprobe upload`` at ``site``: what it printed (one line)."""
    argv = [
        PYTHON, "-m", "blockprobe", "upload", "--collector", collector_url,
        "--state-dir", str(site.state_dir),
    ]  # fmt: skip
    done = lab.run(site.vantage, argv, check=False, timeout=PROBE_TIMEOUT)
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[-1] if text else f"exit {done.returncode}"
