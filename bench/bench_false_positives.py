"""False positives: every noise scenario of the catalogue, run many times; how often `blocked`?

    .venv/bin/python bench/bench_false_positives.py [--runs 20] [--scenario ID ...]

Brings up its own lab (prefix ``bpfp<pid>``), applies each scenario whose catalogue entry says
``expect_not_blocked`` (or the ones named), runs `blockprobe run --platform x --json` at vantage
v1a ``--runs`` times, and prints per scenario the runs and endpoint results that ended `blocked`
(target: zero) and the verdict counts. The lab is torn down at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB_CONFIG = ROOT / "config" / "lab" / "probe-lab.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scenario", action="append", default=[])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from censornet.catalogue import load_catalogue
    from censornet.lab import Lab
    from censornet.scenario import apply_scenario

    chosen = [s for s in load_catalogue() if s.id in args.scenario or (
        not args.scenario and s.expect_not_blocked)]  # fmt: skip
    lab = Lab.up(f"bpfp{os.getpid()}")
    total_blocked = 0
    try:
        for scenario in chosen:
            started = time.monotonic()
            blocked_runs = blocked_endpoints = 0
            counts: collections.Counter[str] = collections.Counter()
            for _ in range(args.runs):
                apply_scenario(lab, scenario.id, isp="isp1" if scenario.scope == "isp" else None)
                done = lab.run(
                    "v1a",
                    [sys.executable, "-m", "blockprobe", "run", "--platform", "x", "--json",
                     "--config", str(LAB_CONFIG)],
                    env={"BLOCKPROBE_CA_FILE": str(lab.ca_file)},
                    timeout=180,
                    check=False,
                )  # fmt: skip
                results = [r for r in json.loads(done.stdout)["results"] if r["target"]]
                counts.update(r["verdict"] for r in results)
                blocked = [r for r in results if r["verdict"] == "blocked"]
                blocked_runs += bool(blocked)
                blocked_endpoints += len(blocked)
            total_blocked += blocked_runs
            print(
                f"{scenario.id:32} {args.runs} runs: {blocked_runs} ended blocked "
                f"({blocked_endpoints} endpoint results); verdicts {dict(sorted(counts.items()))}; "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
    finally:
        lab.down()
    print(f"total: {total_blocked} runs ended blocked over {len(chosen)} scenarios x {args.runs}")


if __name__ == "__main__":
    main()
