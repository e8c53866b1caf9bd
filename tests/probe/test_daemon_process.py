"""The daemon as a process: real measurements of loopback servers, a real collector, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from probe.evidence.bundle import open_sealed, read_envelope
from probe.evidence.outbox import Outbox
from tests.local_site import start_local_site

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def web_port() -> Iterator[int]:
    """A local HTTP server: small pages, and a large object under /big."""
    server = start_local_site(
        big_bytes=4 * 1024 * 1024, page=b"<html><title>local</title>hello</html>"
    )
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, web_port: int, daemon: str) -> Path:
    """A probe.toml whose one platform and canary are the local web server."""
    pdir = tmp / "platforms"
    pdir.mkdir(exist_ok=True)
    (pdir / "local.toml").write_text(
        'name = "local"\ntitle = "Local"\ndomains = ["127.0.0.1"]\nthroughput = true\n'
        f'[[endpoints]]\nurl = "http://127.0.0.1:{web_port}/"\n'
        f'throughput_url = "http://127.0.0.1:{web_port}/big.bin"\n'
    )
    path = tmp / "probe.toml"
    path.write_text(
        'builtin_platforms = false\nplatform_dirs = ["platforms"]\n'
        'control_resolvers = ["udp:127.0.0.1:9"]\n'
        f'canaries = ["http://127.0.0.1:{web_port}/canary"]\nretries = 0\n'
        "[timeouts]\ndns = 1.0\ntcp_connect = 1.0\ntls_handshake = 1.0\n"
        "http_total = 2.0\nthroughput = 1.0\n"
        '[vantage]\ncountry = "PK"\nasn = 64500\nnetwork = "test"\n'
        f'[daemon]\nstate_dir = "state"\njitter = 0\n{daemon}\n'
    )
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPROBE_")}
    env.update(extra)
    return env


class DaemonProcess:
    """``python -m probe.commands.daemon daemon`` with its log in a file."""

    def __init__(self, config: Path, *args: str) -> None:
        self.log = config.parent / "daemon.log"
        self.log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "probe.commands.daemon", "daemon", "-c", str(config), *args],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=self.log_file,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if predicate(text):
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting; log:\n{self.text()}")

    def terminate(self) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        return code, time.monotonic() - t0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[str]:
    """``blockprobe collector serve`` on a free loopback port."""
    port = free_port()
    log = (tmp_path / "collector.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blockprobe",
            "collector",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "collector"),
            "--enroll-policy",
            "open",  # no administrator to approve the probe's key here
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "collector.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


MEASURED = re.compile(r"local: ([a-z_.]+)[^\n]*, bundle [0-9a-f]+")


def runs_in(text: str) -> int:
    """Measured runs in the log (each sealed one bundle), whatever their verdict."""
    return len(MEASURED.findall(text))


def test_daemon_measures_loopback_servers_and_uploads_to_a_collector(tmp_path, web_port, collector):
    """Real runs every 2 s become bundles the collector stores; SIGTERM exits 0 promptly."""
    config = write_config(
        tmp_path, web_port, f'interval = 2\nupload_interval = 2\ncollector_url = "{collector}"'
    )
    daemon = DaemonProcess(config, "--accept")
    try:
        daemon.wait_for(lambda t: t.count("upload: sent 1") >= 2, timeout=30)
        code, took = daemon.terminate()
        verdicts = MEASURED.findall(daemon.text())
    finally:
        daemon.close()
    assert 0 == code
    assert took < 5.0
    log_size = httpx.get(collector + "/healthz").json()["log_size"]
    assert log_size >= 2
    status = subprocess.run(
        [sys.executable, "-m", "probe.commands.daemon", "status", "-c", str(config), "--json"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    assert report["collector"]["reachable"] is True
    last = report["platforms"][0]["last_run"]  # the last run logged, or one the stop cut off
    assert (None if last["outcome"] == "abandoned" else verdicts[-1]) == last["verdict"]
    assert report["platforms"][0]["next_run_at"] is not None
    assert report["budget"]["used_bytes"] > 0
    assert report["consent"]["how"] == "flag"
    assert [64500] == [k["asn"] for k in report["keys"]]
    assert report["daemon"]["running"] is False


def test_sigterm_stops_within_seconds_and_leaves_the_outbox_intact(tmp_path, web_port):
    """Collector away: bundles queue up; SIGTERM mid-schedule stops fast; every bundle verifies."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path, web_port, f'interval = 1\nupload_interval = 60\ncollector_url = "{dead}"'
    )
    daemon = DaemonProcess(config, "--accept")
    try:
        daemon.wait_for(lambda t: runs_in(t) >= 3, timeout=30)
        code, took = daemon.terminate()
        text = daemon.text()
    finally:
        daemon.close()
    assert 0 == code, text
    assert took < 5.0, text
    assert "stopping (SIGTERM)" in text
    assert f"configuration: {config} (given with --config)" in text
    assert f"state directory: {tmp_path / 'state'} ([daemon] state_dir in {config})" in text
    state = tmp_path / "state"
    db = sqlite3.connect(state / "outbox.sqlite3")
    assert [("ok",)] == db.execute("PRAGMA integrity_check").fetchall()
    items = db.execute("SELECT digest, envelope FROM items").fetchall()
    db.close()
    with Outbox(state / "outbox.sqlite3") as box:
        assert len(items) == box.stats().pending
    assert len(items) >= 3
    assert len(items) == runs_in(text)
    for item_digest, envelope in items:
        digest, bundle = open_sealed(read_envelope(envelope))
        assert item_digest == digest
        assert ["local"] == [m.platform for m in bundle.measurements]


def test_sighup_with_a_broken_config_keeps_running_and_logs_why(tmp_path, web_port):
    """A bad file on SIGHUP is refused naming its keys; measuring goes on; a good one loads."""
    config = write_config(tmp_path, web_port, 'interval = 1\nlog_format = "json"')
    daemon = DaemonProcess(config, "--accept")
    try:
        daemon.wait_for(lambda t: runs_in(t) >= 1, timeout=30)
        good = config.read_text()
        config.write_text(good.replace("interval = 1", "interval = 0\nwhat = 3"))
        daemon.proc.send_signal(signal.SIGHUP)
        text = daemon.wait_for(lambda t: "reload refused" in t)
        before = runs_in(text)
        daemon.wait_for(lambda t: runs_in(t) >= before + 2)
        assert daemon.proc.poll() is None
        config.write_text(good.replace("interval = 1", "interval = 1\nmetered = true"))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda t: "configuration reloaded" in t)
        code, _ = daemon.terminate()
        text = daemon.text()
    finally:
        daemon.close()
    assert 0 == code
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    refused = next(r for r in records if "reload refused" in r["msg"])
    assert "error" == refused["level"]
    assert "daemon.interval" in refused["msg"] and "daemon.what: unknown key" in refused["msg"]


def test_without_consent_and_without_a_terminal_it_refuses_to_start(tmp_path, web_port):
    """No TTY, no --accept: exit 3 with a message saying how to consent; nothing measured."""
    config = write_config(tmp_path, web_port, "interval = 1")
    proc = subprocess.run(
        [sys.executable, "-m", "probe.commands.daemon", "daemon", "-c", str(config)],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert 3 == proc.returncode
    assert "--accept" in proc.stderr and "BLOCKPROBE_ACCEPT_CONSENT" in proc.stderr
    assert not (tmp_path / "state" / "outbox.sqlite3").exists()
    assert not (tmp_path / "state" / "consent.json").exists()
