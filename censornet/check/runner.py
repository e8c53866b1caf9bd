"""Applying scenarios one by one and running the probe under test at a vantage point.

Each scenario is applied fresh (``apply_scenario`` first removes every trace of the previous one),
the probe command runs through ``sh -c`` in the vantage's namespace with the ``lab env`` facts in
its environment, and its stdout is read as the verdict contract and scored. The probe is never told
which scenario is applied. The lab is left clean at the end.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from censornet import topology
from censornet.catalogue import Scenario
from censornet.check.contract import ContractError, parse_output
from censornet.check.env import lab_env, platform_endpoints
from censornet.check.scoring import EndpointScore, score
from censornet.lab import Lab
from censornet.netns import LabError
from censornet.scenario import apply_scenario, reset_lab

Status = Literal["pass", "fail", "error"]
DEFAULT_TIMEOUT = 180.0
STDERR_TAIL = 2000
DEFAULT_PROBE_CMD = (
    f"{shlex.quote(sys.executable)} -m blockprobe run --platform x --json "
    '--config "$BLOCKPROBE_PROBE_CONFIG"'
)


class CheckError(ValueError):
    """The check cannot start as asked (unknown scenario id, ISP or vantage point)."""


@dataclass
class ScenarioResult:
    """One scenario: where it was applied, how the probe ran, and each endpoint's score."""

    id: str
    title: str
    category: str
    scope: str
    applied_to: str
    vantage: str
    seconds: float = 0.0
    exit_code: int | None = None
    status: Status = "error"
    error: str = ""
    stderr_tail: str = ""
    endpoints: list[EndpointScore] = field(default_factory=list)

    @property
    def right(self) -> int:
        """How many endpoints the probe got right."""
        return sum(e.ok for e in self.endpoints)

    @property
    def false_positives(self) -> int:
        """How many endpoints the probe called blocked/throttled where nothing targets them."""
        return sum(e.false_positive for e in self.endpoints)


@dataclass
class CheckRun:
    """A whole ``lab check``: settings, order, timing and every scenario's result."""

    probe_cmd: str
    vantage: str
    isp: str
    catalogue: str
    seed: int | None
    started_at: str = ""
    seconds: float = 0.0
    scenarios: list[ScenarioResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        """Scenarios where every endpoint is right."""
        return sum(s.status == "pass" for s in self.scenarios)

    @property
    def all_right(self) -> bool:
        """Whether every scenario passed (the exit status is 0 only then)."""
        return bool(self.scenarios) and self.passed == len(self.scenarios)


def select(
    catalogue: Sequence[Scenario], only: Sequence[str] = (), seed: int | None = None
) -> list[Scenario]:
    """The scenarios to run: ``only`` (in catalogue order) or all, shuffled when ``seed`` is set."""
    known = [s.id for s in catalogue]
    unknown = [i for i in only if i not in known]
    if unknown:
        raise CheckError(
            f"unknown scenario id {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )
    chosen = [s for s in catalogue if not only or s.id in only]
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen


def vantage_for(isp: str, vantage: str | None) -> str:
    """The vantage point to probe from: ``vantage`` (it must be on ``isp``) or ``isp``'s first."""
    try:
        network = topology.isp(isp)
    except KeyError:
        known = ", ".join(i.name for i in topology.ISPS)
        raise CheckError(f"unknown ISP {isp!r}; known: {known}") from None
    if vantage is None:
        return network.vantages[0]
    if vantage not in network.vantages:
        points = ", ".join(network.vantages)
        raise CheckError(f"vantage {vantage!r} is not on {isp}; its vantage points: {points}")
    return vantage


def run_check(
    lab: Lab,
    scenarios: Sequence[Scenario],
    *,
    probe_cmd: str = DEFAULT_PROBE_CMD,
    isp: str = "isp1",
    vantage: str | None = None,
    catalogue: str = "packaged",
    seed: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> CheckRun:
    """Apply each of ``scenarios`` and score ``probe_cmd`` run at ``vantage`` on ``isp``."""
    point = vantage_for(isp, vantage)
    run = CheckRun(probe_cmd, point, isp, catalogue, seed)
    run.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    facts = lab_env(lab, point)
    endpoints = platform_endpoints()
    started = time.monotonic()
    try:
        for scenario in scenarios:
            result = _check_one(lab, scenario, run, facts, endpoints, timeout)
            run.scenarios.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        reset_lab(lab)
        run.seconds = round(time.monotonic() - started, 2)
    return run


def _check_one(
    lab: Lab,
    scenario: Scenario,
    run: CheckRun,
    facts: dict[str, str],
    endpoints: Sequence[str],
    timeout: float,
) -> ScenarioResult:
    applied_to = run.isp if scenario.scope == "isp" else topology.INET
    result = ScenarioResult(
        scenario.id, scenario.title, scenario.category, scenario.scope, applied_to, run.vantage
    )
    started = time.monotonic()
    try:
        apply_scenario(lab, scenario, isp=run.isp if scenario.scope == "isp" else None)
        code, stdout, stderr = _run_probe(lab, run.vantage, run.probe_cmd, facts, timeout)
    except (LabError, subprocess.TimeoutExpired) as exc:
        result.error = (
            f"the probe did not finish in {timeout:.0f} s"
            if isinstance(exc, subprocess.TimeoutExpired)
            else f"lab: {exc}"
        )
        result.seconds = round(time.monotonic() - started, 2)
        return result
    result.seconds = round(time.monotonic() - started, 2)
    result.exit_code = code
    result.stderr_tail = stderr[-STDERR_TAIL:]
    try:
        answers = parse_output(stdout)
    except ContractError as exc:
        result.error = f"output is not the verdict contract: {exc} (exit status {code})"
        return result
    result.endpoints = score(scenario, answers, endpoints)
    result.status = "pass" if all(e.ok for e in result.endpoints) else "fail"
    return result


def _run_probe(
    lab: Lab, vantage: str, probe_cmd: str, facts: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run ``probe_cmd`` with ``sh -c`` at ``vantage``; its whole process group dies on timeout."""
    proc = subprocess.Popen(
        lab.command(vantage, ["sh", "-c", probe_cmd]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **facts},
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, stdout, stderr
