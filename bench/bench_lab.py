"""Mock censor lab timings: lab up, scenario switch (every catalogue scenario), lab down.

Prints the time to bring a fresh lab up, the mean and max time of ``apply_scenario`` over every
scenario of the catalogue (``--rounds`` passes, each scenario applied to every ISP, or to inet for
global ones), the slowest scenarios, and the time to bring the lab down. Needs root (or user
namespaces); uses its own lab prefix (``bpbench<pid>`` unless BLOCKPROBE_LAB_PREFIX is set).

    .venv/bin/python bench/bench_lab.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from censornet.catalogue import scenario_ids
from censornet.lab import Lab
from censornet.scenario import apply_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the catalogue")
    args = parser.parse_args()
    prefix = os.environ.get("BLOCKPROBE_LAB_PREFIX") or f"bpbench{os.getpid()}"

    started = time.perf_counter()
    lab = Lab.up(prefix)
    up_seconds = time.perf_counter() - started
    switches: dict[str, list[float]] = {}
    try:
        for _ in range(args.rounds):
            for scenario_id in scenario_ids():
                begin = time.perf_counter()
                apply_scenario(lab, scenario_id)
                switches.setdefault(scenario_id, []).append(time.perf_counter() - begin)
        apply_scenario(lab, "clean")
    finally:
        begin = time.perf_counter()
        lab.down()
        down_seconds = time.perf_counter() - begin

    every = [t for times in switches.values() for t in times]
    print(f"lab {prefix!r} ({lab.mode} mode)")
    print(f"lab up:          {up_seconds:.2f} s")
    print(
        f"scenario switch: mean {statistics.mean(every) * 1000:.0f} ms, "
        f"median {statistics.median(every) * 1000:.0f} ms, max {max(every) * 1000:.0f} ms "
        f"({len(switches)} scenarios x {args.rounds} rounds = {len(every)} switches)"
    )
    slowest = sorted(switches.items(), key=lambda item: max(item[1]), reverse=True)[:5]
    print("slowest:         " + ", ".join(f"{sid} {max(t) * 1000:.0f} ms" for sid, t in slowest))
    print(f"lab down:        {down_seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
