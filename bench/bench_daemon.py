"""Benchmark the probe daemon as a real process: startup time, idle RSS and CPU, data per run.

Idle figures come from the daemon with the default configuration (every built-in platform, the
default resolvers and canaries; only the state directory set), started in a network namespace of
its own with no route anywhere, so its runs stay on this machine and end as ``outage.local``.
Data figures come from a platform served by a local HTTP server (one endpoint with a throughput
object, one canary), as in tests/probe/test_daemon_process.py. Figures printed:

- startup: from process start to "daemon started" in its log (imports, config, scheduler);
- idle RSS (VmRSS) at start, and after every platform has run once, then CPU over an idle window
  (target: under 50 MiB, near-zero CPU); whether aioquic (the QUIC step's library, when
  installed) is loaded then: it must not be until a QUIC step runs;
- data per scheduled run: bytes the run counted (HTTP bodies and throughput transfers) and the
  sealed bundle it queued, normal and metered.

    .venv/bin/python bench/bench_daemon.py [--idle 20] [--metrics-port 9464]

Needs root or unprivileged user namespaces (``unshare``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probe.config import ProbeConfig  # noqa: E402
from probe.daemon.state import State  # noqa: E402
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


def aioquic_loaded(pid: int) -> bool:
    """Whether the process has aioquic's compiled module mapped (it imported aioquic)."""
    return "aioquic" in Path(f"/proc/{pid}/maps").read_text()


def wait_for(log: Path, text: str, count: int, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if log.read_text(errors="replace").count(text) >= count:
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {text!r}:\n{log.read_text()}")


def isolated(argv: list[str]) -> list[str]:
    """``argv`` in a new network namespace with no interface up: nothing leaves this machine."""
    userns = [] if os.geteuid() == 0 else ["--map-root-user"]
    return ["unshare", "--net", *userns, *argv]


def run_default_daemon(tmp: Path, idle: float, metrics_port: int | None) -> dict[str, float]:
    """The daemon on the default configuration: RSS at start and after every platform ran once
    (with its ``/metrics`` server listening when ``metrics_port`` is given)."""
    config = tmp / "probe.toml"
    metrics = f"metrics_port = {metrics_port}\n" if metrics_port else ""
    config.write_text(f'[daemon]\nstate_dir = "state"\n{metrics}')
    log = tmp / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROBE_")}
    argv = [sys.executable, "-m", "blockprobe", "daemon", "-c", str(config), "--accept"]
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            isolated(argv), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        started = wait_for(log, "daemon started", 1, 60) - t0
        time.sleep(1.0)
        rss_start = rss_mib(proc.pid)
        quic_at_start = aioquic_loaded(proc.pid)
        runs_at_start = log.read_text(errors="replace").count(" endpoints, ")
        platforms = len(ProbeConfig().chosen_platforms())  # the default: every built-in one
        wait_for(log, " endpoints, ", platforms, 150)  # every platform's first run
        time.sleep(2.0)
        rss_after_runs = rss_mib(proc.pid)
        quic_after_runs = aioquic_loaded(proc.pid)
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
    return {
        "startup_s": started,
        "stop_s": stop,
        "platforms": platforms,
        "rss_start_mib": rss_start,
        "aioquic_installed": float(importlib.util.find_spec("aioquic") is not None),
        "aioquic_loaded_at_start": float(quic_at_start),
        "aioquic_loaded_after_runs": float(quic_after_runs),
        "runs_at_start": runs_at_start,
        "rss_after_runs_mib": rss_after_runs,
        "rss_idle_mib": rss_idle,
        "idle_cpu_s": cpu1 - cpu0,
        "idle_window_s": w1 - w0,
    }


def run_daemon(tmp: Path, port: int, extra: str, runs: int, idle: float) -> dict[str, float]:
    config = write_config(tmp, port, extra)
    log = tmp / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROBE_")}
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blockprobe", "daemon", "-c", str(config), "--accept"],
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
        "bundle_bytes": record.bundle_bytes,
        "upload_bytes": usage.upload_bytes,
        "last_run_cap": record.budget_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=20.0, help="idle window, seconds")
    parser.add_argument("--runs", type=int, default=3, help="runs before the idle window")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="idle figures with /metrics served"
    )
    args = parser.parse_args()
    page = b"<html><title>bench</title>" + b"hello " * 2000 + b"</html>"
    with tempfile.TemporaryDirectory() as d0:
        idle = run_default_daemon(Path(d0), args.idle, args.metrics_port)
    server = start_local_site(big_bytes=8 * 1024 * 1024, page=page)
    port = server.server_address[1]
    try:
        with tempfile.TemporaryDirectory() as d1:
            normal = run_daemon(Path(d1), port, "interval = 3", args.runs, 0.1)
        with tempfile.TemporaryDirectory() as d2:
            metered = run_daemon(Path(d2), port, "interval = 3\nmetered = true", args.runs, 0.1)
    finally:
        server.shutdown()
    print(f"startup (process start -> scheduler running): {idle['startup_s']:.2f} s")
    print(f"stop on SIGTERM: {idle['stop_s']:.2f} s")
    print(
        f"RSS, default config ({idle['platforms']:.0f} platforms): {idle['rss_start_mib']:.1f} MiB"
        f" at start ({idle['runs_at_start']:.0f} runs done), {idle['rss_after_runs_mib']:.1f} MiB"
        f" once every platform ran, {idle['rss_idle_mib']:.1f} MiB after {args.idle:g} s idle"
        " (target < 50 MiB)"
    )
    installed = "installed" if idle["aioquic_installed"] else "not installed"
    print(
        f"aioquic ({installed}): loaded at start {bool(idle['aioquic_loaded_at_start'])},"
        f" after every platform ran {bool(idle['aioquic_loaded_after_runs'])}"
        " (no route here: no QUIC step runs)"
    )
    print(
        f"idle CPU: {idle['idle_cpu_s']:.3f} s over {idle['idle_window_s']:.1f} s"
        f" ({100 * idle['idle_cpu_s'] / idle['idle_window_s']:.2f} % of one core)"
    )
    for name, r in (("normal", normal), ("metered", metered)):
        print(
            f"data per scheduled run ({name}, {r['runs']:.0f} runs, cap {r['last_run_cap']:.0f} B):"
            f" measured {r['bytes_per_run'] / 1024:.1f} KiB; bundle {r['bundle_bytes'] / 1024:.1f}"
            f" KiB sealed, {r['upload_bytes']:.0f} B uploaded (no collector configured)"
        )


if __name__ == "__main__":
    main()
