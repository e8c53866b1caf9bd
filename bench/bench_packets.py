"""Packet evidence costs at lab vantage v1a: extra time and packets per endpoint, and the hop found.

Brings up its own lab (``bpbenchpk<pid>``), then at v1a measures ``https://twitter.com/`` with the
web flow alone and with packet evidence added (injected-reset check and DNS responses with IP
TTLs, run concurrently; then CenTrace), clean and with the RST injector running in isp1.
Needs root. Prints medians over ``--rounds``.

    .venv/bin/python bench/bench_packets.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from censornet.lab import Lab
from censornet.servers.rst_injector import READY_NAME

AT_VANTAGE = """
import asyncio, json, statistics, sys, time
from pathlib import Path
from probe.flows.plan import EndpointPlan, MeasureSettings
from probe.flows.web import measure_endpoint
from probe.steps import centrace, dnspackets, packets
from probe.net.clock import deadline_in

IP, HOST = "198.18.100.10", "twitter.com"
plan = EndpointPlan(platform="x", url="https://twitter.com/", domain=HOST,
                    platform_domains=("twitter.com", "x.com"),
                    throughput_url="https://twitter.com/large")
settings = MeasureSettings(system_resolver="198.18.10.53", control_resolvers=("udp:198.18.103.53",),
                           ca_file=Path(sys.argv[1]), canaries=("https://example.org/",))

async def main(rounds):
    rows = []
    for _ in range(rounds):
        t = time.perf_counter()
        await measure_endpoint(plan, settings)
        flow = time.perf_counter() - t
        t = time.perf_counter()
        reset, dns = await asyncio.gather(
            packets.reset_evidence(IP, HOST, deadline=deadline_in(4)),
            dnspackets.dns_evidence(HOST, "198.18.103.53", deadline=deadline_in(4),
                                    reference_domain="example.org"))
        evidence = time.perf_counter() - t
        t = time.perf_counter()
        trace = await centrace.locate_censor(IP, HOST, allow=lambda h, i: True,
                                             deadline=deadline_in(10), control_host="example.org")
        tracing = time.perf_counter() - t
        rows.append({"flow": flow, "evidence": evidence, "trace": tracing,
                     "evidence_packets": reset.packets + dns.packets,
                     "trace_packets": trace.packets,
                     "probes": len(trace.hops), "injected": reset.injected,
                     "outcome": trace.outcome, "hop": trace.hop, "router": trace.router})
    print(json.dumps(rows))

asyncio.run(main(int(sys.argv[2])))
"""


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _measure(lab: Lab, rounds: int, label: str) -> None:
    argv = [sys.executable, "-c", AT_VANTAGE, str(lab.ca_file), str(rounds)]
    rows = json.loads(lab.run("v1a", argv, timeout=600).stdout)
    flow = _median([r["flow"] for r in rows])
    evidence = _median([r["evidence"] for r in rows])
    trace = _median([r["trace"] for r in rows])
    last = rows[-1]
    print(
        f"{label}: flow {flow * 1000:.0f} ms; packet evidence +{evidence * 1000:.0f} ms "
        f"({evidence / flow:.0%}), {last['evidence_packets']} packets; "
        f"CenTrace +{trace * 1000:.0f} ms, {last['probes']} probes, {last['trace_packets']} "
        f"packets; injected={last['injected']}, "
        f"censor {last['outcome']} at hop {last['hop']} ({last['router']})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    prefix = os.environ.get("BLOCKPROBE_LAB_PREFIX") or f"bpbenchpk{os.getpid()}"
    lab = Lab.up(prefix)
    injector: subprocess.Popen[bytes] | None = None
    try:
        _measure(lab, args.rounds, "clean     ")
        ready = lab.state_dir / "ready" / READY_NAME
        argv = [sys.executable, "-m", "censornet.servers.rst_injector"]
        argv += ["--state", str(lab.state_dir), "--sni", "twitter.com"]
        injector = subprocess.Popen(lab.command("isp1", argv), stderr=subprocess.DEVNULL)
        while not ready.exists():
            time.sleep(0.05)
        _measure(lab, args.rounds, "rst-inject")
        print("true censor hop: 1 (isp1, router 198.18.11.1); the platform server is at hop 2")
    finally:
        if injector is not None:
            injector.terminate()
            injector.wait(timeout=10)
        lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
