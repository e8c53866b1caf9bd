"""Bundle size per X run: the signed envelope as stored, and gzip-compressed as uploaded.

    .venv/bin/python bench/bench_bundle.py [--rounds 3] [--no-lab]

Offline: the default configuration's X check in a network namespace of its own with no route
anywhere (every endpoint fails, as on a cut-off network). Lab: the lab configuration's X check at
vantage v1a of a mock censor network this script brings up (prefix ``bpbundle<pid>``) and tears
down. Each run's measurements are sealed into one bundle with a throwaway key. Needs root or
unprivileged user namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB_CONFIG = ROOT / "config" / "lab" / "probe-lab.toml"


async def _inner(config_path: str | None) -> dict[str, int]:
    """One X check sealed into one bundle: its bytes, compressed bytes and measurement count."""
    from probe.config import load_config
    from probe.evidence.bundle import build, seal
    from probe.evidence.keys import KeyStore
    from probe.run import run_check

    config = load_config(Path(config_path) if config_path else None)
    ca_file = os.environ.get("BLOCKPROBE_CA_FILE")
    if ca_file:
        config = config.with_ca_file(Path(ca_file))
    _, measurements = await run_check(config, config.chosen_platforms(["x"]))
    with tempfile.TemporaryDirectory() as tmp:
        key = KeyStore(Path(tmp)).for_network(measurements[0].vantage.asn)
        data = seal(build(measurements, key), key).to_bytes()
    wire = gzip.compress(data, compresslevel=6, mtime=0)  # as probe.evidence.upload sends it
    return {"bytes": len(data), "gzip": len(wire), "measurements": len(measurements)}


def _line(where: str, runs: list[dict[str, int]]) -> str:
    size = statistics.median(r["bytes"] for r in runs) / 1024
    wire = statistics.median(r["gzip"] for r in runs) / 1024
    return (
        f"bundle per X run, {where}: {size:.1f} KiB signed, {wire:.1f} KiB gzip'd on the wire"
        f" ({runs[0]['measurements']} measurements, median of {len(runs)}; target < 20 KiB)"
    )


def _result(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def offline() -> dict[str, int]:
    userns = [] if os.geteuid() == 0 else ["--map-root-user"]
    argv = ["unshare", "--net", *userns, sys.executable, __file__, "--inner"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROBE_")}
    env["PYTHONPATH"] = str(ROOT)
    return _result(subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-lab", action="store_true", help="only the offline figure")
    args = parser.parse_args()
    print(_line("offline", [offline() for _ in range(args.rounds)]), flush=True)
    if args.no_lab:
        return
    sys.path.insert(0, str(ROOT))
    from censornet.lab import Lab
    from censornet.scenario import apply_scenario

    lab = Lab.up(f"bpbundle{os.getpid()}")
    try:
        apply_scenario(lab, "clean")
        env = {"BLOCKPROBE_CA_FILE": str(lab.ca_file), "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, __file__, "--inner", str(LAB_CONFIG)]
        runs = [
            _result(lab.run("v1a", argv, env=env, timeout=300, check=False))
            for _ in range(args.rounds)
        ]
        print(_line("in the lab (clean)", runs))
    finally:
        lab.down()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        print(json.dumps(asyncio.run(_inner(sys.argv[2] if len(sys.argv) > 2 else None))))
    else:
        main()
