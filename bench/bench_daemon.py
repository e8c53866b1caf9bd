"""Benchmark the probe daemon as a real process: startup time, idle RSS and CPU, data per run.

The daemon measures a platform served by a local HTTP server (one endpoint with a throughput
object, one canary), as in tests/probe/test_daemon_process.py. Figures printed:

- startup: from process start to "daemon started" in its log (imports, config, scheduler);
- data per scheduled run: bytes the run counted (HTTP bodies and throughput transfers) plus the
  sealed bundle it queued for upload, normal and metered;
- idle: RSS (VmRSS) and CPU time used over a window with no run due (target: under 80 MiB,
  near-zero CPU).

    .venv/bin/python bench/bench_daemon.py [--idle 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probe.state import State  # noqa: E402
from tests.local_site import start_local_site  # noqa: E402


def write_config(tmp: Path, port: int, extra: str) -> Path:
    (tmp / "platforms").mkdir(exist_ok=True)
    (tmp / "platforms" / "local.toml").write_text(
        'name = "local"\ntitle = "Local"\ndomains = ["127.0.0.1"]\nthroughput = true\n'
        f'[[endpoints]]\nurl = "http://127.0.0.1:{port}/"\n'
        f'throughput_url = "http://127.0.0.1:{port}/big.bin"\n'
        f'[[endpoints]]\nurl = "http://127.0.0.1:{port}/home"\n'
    )
    path = tmp / "probe.toml"
    path.write_text(
        'builtin_platforms = false\nplatform_dirs = ["platforms"]\n'
        'control_resolvers = ["udp:127.0.0.1:9"]\n'
        f'canaries = ["http://127.0.0.1:{port}/canary"]\nretries = 0\n'
        "[timeouts]\ndns = 1.0\ntcp_connect = 1.0\ntls_handshake = 1.0\nhttp_total = 2.0\n"
        'throughput = 1.0\n[vantage]\ncountry = "PK"\nasn = 64500\n'
        f'[daemon]\nstate_dir = "state"\njitter = 0\n{extra}\n'
    )
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(log: Path, text: str, count: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if log.read_text(errors="replace").count(text) >= count:
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {text!r}:\n{log.read_text()}")


def run_daemon(tmp: Path, port: int, extra: str, runs: int, idle: float) -> dict[str, float]:
    config = write_config(tmp, port, extra)
    log = tmp / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROBE_")}
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "probe", "daemon", "-c", str(config), "--accept"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        started = wait_for(log, "daemon started", 1, 60) - t0
        wait_for(log, "local: ", runs, 120)
        time.sleep(0.5)
        rss_after_runs = rss_mib(proc.pid)
        cpu0, w0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(idle)
        cpu1, w1 = cpu_seconds(proc.pid), time.monotonic()
        rss_idle = rss_mib(proc.pid)
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        stop = time.monotonic() - t_stop
    finally:
        if proc.poll() is None:
            proc.kill()
    with State(tmp / "state") as state:
        record = state.last_runs()["local"]
        usage = state.usage()
    return {
        "startup_s": started,
        "stop_s": stop,
        "rss_idle_mib": rss_idle,
        "rss_after_runs_mib": rss_after_runs,
        "idle_cpu_s": cpu1 - cpu0,
        "idle_window_s": w1 - w0,
        "runs": usage.runs,
        "bytes_per_run": usage.measured_bytes / max(1, usage.runs),
        "bundle_bytes_per_run": usage.upload_bytes / max(1, usage.runs),
        "last_run_cap": record.budget_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=20.0, help="idle window, seconds")
    parser.add_argument("--runs", type=int, default=3, help="runs before the idle window")
    args = parser.parse_args()
    page = b"<html><title>bench</title>" + b"hello " * 2000 + b"</html>"
    server = start_local_site(big_bytes=8 * 1024 * 1024, page=page)
    port = server.server_address[1]
    interval = args.idle + 30  # the idle window falls between two runs
    try:
        with tempfile.TemporaryDirectory() as d1:
            # runs come every 3 s until `runs` are done, then the schedule is stretched by a
            # reload-free trick: a 3 s interval for the runs, then the idle window is measured
            # in a second daemon whose next run is `interval` away.
            normal = run_daemon(Path(d1), port, "interval = 3", args.runs, 0.1)
        with tempfile.TemporaryDirectory() as d2:
            metered = run_daemon(Path(d2), port, "interval = 3\nmetered = true", args.runs, 0.1)
        with tempfile.TemporaryDirectory() as d3:
            idle = run_daemon(Path(d3), port, f"interval = {interval:g}", 1, args.idle)
    finally:
        server.shutdown()
    print(f"startup (process start -> scheduler running): {idle['startup_s']:.2f} s")
    print(f"stop on SIGTERM: {idle['stop_s']:.2f} s")
    print(
        f"idle RSS: {idle['rss_idle_mib']:.1f} MiB (after {args.runs} runs in another daemon:"
        f" {normal['rss_after_runs_mib']:.1f} MiB; target < 80 MiB)"
    )
    print(
        f"idle CPU: {idle['idle_cpu_s']:.3f} s over {idle['idle_window_s']:.1f} s"
        f" ({100 * idle['idle_cpu_s'] / idle['idle_window_s']:.2f} % of one core)"
    )
    for name, r in (("normal", normal), ("metered", metered)):
        print(
            f"data per scheduled run ({name}, {r['runs']:.0f} runs, cap {r['last_run_cap']:.0f} B):"
            f" measured {r['bytes_per_run'] / 1024:.1f} KiB + bundle"
            f" {r['bundle_bytes_per_run'] / 1024:.1f} KiB"
        )


if __name__ == "__main__":
    main()
