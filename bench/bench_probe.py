"""Probe figures in the mock censor network: check time, blackhole time, sweep, throttle, data.

    .venv/bin/python bench/bench_probe.py [--rounds 3]

Brings up its own lab (prefix ``bpbench<pid>``), runs the probe in-process at vantage v1a (this
script re-enters itself there with ``--inner``), prints one line per figure, and tears the lab down.
Needs root or user namespaces, like the lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAB_CONFIG = ROOT / "config" / "lab" / "probe-lab.toml"


def _x_with_throughput_everywhere(config: Any) -> Any:
    """X as configured, with a throughput object on every https endpoint (the lab streams one
    for any non-root path): the heaviest full check a platform file can ask for."""
    (x,) = config.chosen_platforms(["x"])
    endpoints = tuple(
        e.model_copy(update={"throughput_url": e.url.rstrip("/") + "/blockprobe-throughput.bin"})
        if e.url.startswith("https://") and e.throughput_url is None
        else e
        for e in x.endpoints
    )
    return x.model_copy(update={"endpoints": endpoints, "throughput": True})


def _bundle_size(measurements: list[Any]) -> dict[str, int]:
    """The signed bundle of this run's measurements: bytes as stored, and gzip'd on the wire."""
    import gzip
    import tempfile

    from probe.evidence.bundle import build, seal
    from probe.evidence.keys import KeyStore

    with tempfile.TemporaryDirectory() as tmp:
        key = KeyStore(Path(tmp)).for_network(measurements[0].vantage.asn)
        data = seal(build(measurements, key), key).to_bytes()
    return {"bundle": len(data), "bundle_gzip": len(gzip.compress(data, 6))}


async def _inner_check(ca_file: str) -> dict[str, Any]:
    """One full X check (run_check), throughput on every https endpoint: seconds, bytes used,
    each endpoint's transfer, the bundle's size."""
    from probe.budget import DataBudget
    from probe.config import load_config
    from probe.run import run_check

    config = load_config(LAB_CONFIG).with_ca_file(Path(ca_file))
    budget = DataBudget(config.budget.run_bytes * 8)  # room for a transfer on every endpoint
    x = _x_with_throughput_everywhere(config)
    marks: list[str] = []
    started = time.perf_counter()

    def progress(message: str) -> None:
        marks.append(f"{time.perf_counter() - started:6.2f} s  {message}")

    document, measurements = await run_check(config, [x], budget=budget, progress=progress)
    seconds = time.perf_counter() - started
    transfers = [
        {"url": t.url, "direction": t.direction, "bytes": t.bytes, "seconds": round(t.seconds, 2),
         "verdict": m.verdict.kind, "method": m.verdict.method}
        for m in measurements
        for t in m.local.throughput
        if not t.control
    ]  # fmt: skip
    return {
        "seconds": seconds,
        "bytes": budget.used,
        "verdicts": {r.target or "summary": [r.verdict, r.method] for r in document.results},
        "transfers": transfers,
        "marks": marks,
        "endpoint_seconds": {m.target: round(m.runtime, 2) for m in measurements},
        **_bundle_size(measurements),
    }


async def _inner_sweep(ca_file: str, targets: int) -> dict[str, Any]:
    """``targets`` endpoints measured with bounded concurrency (no throughput): seconds."""
    from probe.config import load_config
    from probe.flows.plan import EndpointPlan
    from probe.flows.web import measure_many

    settings = load_config(LAB_CONFIG).with_ca_file(Path(ca_file)).to_settings()
    hosts = ["x.com", "twitter.com", "t.co", "abs.twimg.com", "youtube.com", "facebook.com",
             "instagram.com", "telegram.org", "wikipedia.org", "tiktok.com", "signal.org",
             "example.org", "example.com"]  # fmt: skip
    plans = [
        EndpointPlan(
            platform="sweep",
            url=f"https://{hosts[i % len(hosts)]}/?t={i}",
            domain=hosts[i % len(hosts)],
            platform_domains=(hosts[i % len(hosts)],),
        )
        for i in range(targets)
    ]
    started = time.perf_counter()
    results = await measure_many(plans, settings)
    seconds = time.perf_counter() - started
    answered = sum(1 for o in results.values() if any(h.status for h in o.http))
    return {"seconds": seconds, "targets": len(plans), "answered": answered,
            "concurrency": settings.concurrency}  # fmt: skip


def _inner(argv: list[str]) -> None:
    mode, ca_file = argv[0], os.environ["BLOCKPROBE_CA_FILE"]
    if mode == "check":
        result = asyncio.run(_inner_check(ca_file))
    else:
        result = asyncio.run(_inner_sweep(ca_file, int(argv[1])))
    print(json.dumps(result))


def _at_vantage(lab: Any, *args: str) -> dict[str, Any]:
    done = lab.run(
        "v1a",
        [sys.executable, __file__, "--inner", *args],
        env={"BLOCKPROBE_CA_FILE": str(lab.ca_file), "PYTHONPATH": str(ROOT)},
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--check-only", action="store_true", help="only the reachable X check")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from censornet.lab import Lab
    from censornet.scenario import apply_scenario
    from probe.config import load_config

    timeouts = load_config(LAB_CONFIG).timeouts
    lab = Lab.up(f"bpbench{os.getpid()}")
    try:
        apply_scenario(lab, "clean")
        clean = [_at_vantage(lab, "check") for _ in range(args.rounds)]
        times = [r["seconds"] for r in clean]
        print(f"full X check, reachable, a transfer on every https endpoint: median "
              f"{statistics.median(times):.2f} s, max {max(times):.2f} s over {args.rounds} runs "
              f"(target < 3 s)")  # fmt: skip
        slowest = max(clean, key=lambda r: r["seconds"])
        print("  steps of the slowest run:", *slowest["marks"], sep="\n    ")
        print("  seconds per endpoint:", json.dumps(slowest["endpoint_seconds"]))
        used = [r["bytes"] for r in clean]
        print(f"data per X run: median {statistics.median(used) / 1024:.0f} KiB, "
              f"max {max(used) / 1024:.0f} KiB")  # fmt: skip
        sizes = [r["bundle"] for r in clean]
        wire = [r["bundle_gzip"] for r in clean]
        print(f"signed bundle per X run: median {statistics.median(sizes) / 1024:.1f} KiB, "
              f"{statistics.median(wire) / 1024:.1f} KiB gzip'd on the wire "
              f"(target < 20 KiB)")  # fmt: skip
        if args.check_only:
            return

        apply_scenario(lab, "ip-blackhole", isp="isp1")
        hole = [_at_vantage(lab, "check") for _ in range(args.rounds)]
        times = [r["seconds"] for r in hole]
        limit = timeouts.dns + timeouts.tcp_connect + 1
        verdicts = sorted({tuple(v) for v in hole[0]["verdicts"].values()})
        print(f"full X check, every endpoint blackholed: median {statistics.median(times):.2f} s "
              f"(connect timeout {timeouts.tcp_connect:.1f} s; target <= DNS + connect timeout "
              f"+ 1 s = {limit:.1f} s); verdicts: {verdicts}")  # fmt: skip

        apply_scenario(lab, "sni-throttle-police", isp="isp1")
        policed = [_at_vantage(lab, "check") for _ in range(args.rounds)]
        for run in policed:
            for t in run["transfers"]:
                if t["verdict"] == "throttled":
                    kbps = t["bytes"] * 8 / 1000 / t["seconds"] if t["seconds"] else 0.0
                    print(
                        f"policing at 128 kbit/s: {t['url']} ({t['direction']}) judged "
                        f"{t['method']} after {t['bytes'] / 1024:.0f} KiB in {t['seconds']:.2f} s "
                        f"({kbps:.0f} kbit/s; target <= 256 KiB, < 3 s)"
                    )
        print(f"policed run: {statistics.median([r['seconds'] for r in policed]):.2f} s, "
              f"{statistics.median([r['bytes'] for r in policed]) / 1024:.0f} KiB")  # fmt: skip

        apply_scenario(lab, "clean")
        sweep = _at_vantage(lab, "sweep", str(args.targets))
        print(f"sweep: {sweep['targets']} targets in {sweep['seconds']:.2f} s with concurrency "
              f"{sweep['concurrency']}, {sweep['answered']} answered (target < 30 s)")  # fmt: skip
    finally:
        lab.down()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        _inner(sys.argv[2:])
    else:
        main()
