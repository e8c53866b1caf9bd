"""The body of ``blockprobe lab check``: validate, run, print the table, write the reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from censornet.catalogue import CatalogueError, Scenario, load_catalogue, parse_catalogue
from censornet.check.junit import junit_xml
from censornet.check.report import (
    report_json,
    scenario_details,
    scenario_line,
    summary_line,
    table_header,
)
from censornet.check.runner import (
    DEFAULT_PROBE_CMD,
    CheckError,
    ScenarioResult,
    run_check,
    select,
    vantage_for,
)
from censornet.lab import Lab
from censornet.netns import LabError

EXIT_ALL_RIGHT = 0
EXIT_WRONG = 1
EXIT_USAGE = 2


def load_catalogue_file(path: str | None) -> tuple[list[Scenario], str]:
    """The scenarios of the catalogue file at ``path`` (or the packaged one) and its label."""
    if path is None:
        return load_catalogue(), "packaged"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckError(f"--catalogue {path}: cannot read it ({exc})") from None
    try:
        return parse_catalogue(text), str(Path(path).resolve())
    except CatalogueError as exc:
        raise CheckError(f"--catalogue {path}: {exc}") from None


def run_check_command(
    *,
    only: list[str],
    isp: str,
    vantage: str | None,
    seed: int | None,
    probe_cmd: str | None,
    catalogue_file: str | None,
    report_file: str | None,
    junit_file: str | None,
    timeout: float,
    dry_run: bool,
) -> int:
    """Run ``lab check`` as the options say; the exit status."""
    try:
        catalogue, label = load_catalogue_file(catalogue_file)
        scenarios = select(catalogue, only, seed)
        point = vantage_for(isp, vantage)
        if timeout <= 0:
            raise CheckError("--timeout must be positive")
    except CheckError as exc:
        return _fail(str(exc))
    if dry_run:
        for scenario in scenarios:
            where = isp if scenario.scope == "isp" else "inet"
            print(f"{scenario.id:32} {scenario.category:9} applied to {where}, probe at {point}")
        print(f"{len(scenarios)} scenarios from the {label} catalogue are valid", file=sys.stderr)
        return EXIT_ALL_RIGHT
    try:
        lab = Lab.locate()
    except LabError as exc:
        return _fail(str(exc))
    print(table_header(), flush=True)

    def show(result: ScenarioResult) -> None:
        print(scenario_line(result), flush=True)
        for line in scenario_details(result):
            print(line, flush=True)

    try:
        run = run_check(
            lab,
            scenarios,
            probe_cmd=probe_cmd or DEFAULT_PROBE_CMD,
            isp=isp,
            vantage=point,
            catalogue=label,
            seed=seed,
            timeout=timeout,
            on_result=show,
        )
    except LabError as exc:
        return _fail(str(exc))
    print(summary_line(run))
    try:
        if report_file:
            Path(report_file).write_text(json.dumps(report_json(run), indent=1) + "\n")
        if junit_file:
            Path(junit_file).write_text(junit_xml(run))
    except OSError as exc:
        return _fail(f"cannot write the report: {exc}")
    return EXIT_ALL_RIGHT if run.all_right else EXIT_WRONG


def _fail(message: str) -> int:
    print(f"blockprobe lab check: {message}", file=sys.stderr)
    return EXIT_USAGE
