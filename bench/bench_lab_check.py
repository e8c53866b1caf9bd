"""`blockprobe lab check` over the catalogue: our probe in file order and shuffled, and the naive
example checker (docs/examples), side by side per scenario.

Prints, per run, the wall time and the score (scenarios right, endpoints right, false positives),
then one row per scenario with each run's result. Needs root (or user namespaces); brings up its
own lab (prefix ``bpbench<pid>`` unless BLOCKPROBE_LAB_PREFIX is set) and takes it down. With
``--reports OURS SHUFFLED NAIVE`` it only tabulates three earlier ``--report`` files.

    .venv/bin/python bench/bench_lab_check.py [--seed 17] [--only a,b] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from censornet.lab import Lab

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
NAIVE = f"sh {EXAMPLES / 'naive_checker.sh'} | python3 {EXAMPLES / 'naive_adapter.py'}"


def check(prefix: str, report: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """One `lab check` run; its wall time and JSON report."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "blockprobe", "lab", "check", "--report", str(report), *args],
        env={**os.environ, "BLOCKPROBE_LAB_PREFIX": prefix},
        stdout=subprocess.DEVNULL,
        check=False,
    )
    report_data: dict[str, Any] = json.loads(report.read_text())
    return time.perf_counter() - started, report_data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=17, help="the --shuffle seed")
    parser.add_argument("--only", default="", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--keep", type=Path, help="keep the three JSON reports in this directory")
    parser.add_argument("--reports", nargs=3, type=Path, metavar=("OURS", "SHUFFLED", "NAIVE"))
    args = parser.parse_args()

    runs: dict[str, tuple[float, dict[str, Any]]] = {}
    names = ("blockprobe", f"shuffled({args.seed})", "naive")
    if args.reports:
        for name, path in zip(names, args.reports, strict=True):
            data = json.loads(path.read_text())
            runs[name] = (data["seconds"], data)
    else:
        only = ("--only", args.only) if args.only else ()
        prefix = os.environ.get("BLOCKPROBE_LAB_PREFIX") or f"bpbench{os.getpid()}"
        out = args.keep or Path(tempfile.mkdtemp(prefix="bench-lab-check-"))
        out.mkdir(parents=True, exist_ok=True)
        lab = Lab.up(prefix)
        try:
            runs[names[0]] = check(prefix, out / "ours.json", *only)
            runs[names[1]] = check(
                prefix, out / "shuffled.json", *only, "--shuffle", str(args.seed)
            )
            runs[names[2]] = check(prefix, out / "naive.json", *only, "--probe-cmd", NAIVE)
        finally:
            lab.down()

    for name, (seconds, report) in runs.items():
        s = report["summary"]
        print(
            f"{name:14} {s['passed']:3}/{s['scenarios']} scenarios right, "
            f"{s['endpoints_right']}/{s['endpoints']} endpoints, "
            f"{s['false_positives']} false positives, {seconds:6.1f} s"
        )
    by_id = {name: {sc["id"]: sc for sc in r["scenarios"]} for name, (_, r) in runs.items()}
    order = [sc["id"] for sc in runs[names[0]][1]["scenarios"]]
    print(f"\n{'scenario':32} {'category':9}" + "".join(f" {n:>16}" for n in names))
    for scenario_id in order:
        cells = []
        for name in names:
            sc = by_id[name].get(scenario_id)
            if sc is None:
                cells.append("-")
                continue
            cell = f"{sc['endpoints_right']}/{len(sc['endpoints'])}"
            if sc["status"] == "error":
                cell = "error"
            elif sc["false_positives"]:
                cell += f" fp{sc['false_positives']}"
            cells.append(("ok " if sc["status"] == "pass" else "") + cell)
        category = by_id[names[0]][scenario_id]["category"]
        print(f"{scenario_id:32} {category:9}" + "".join(f" {c:>16}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
