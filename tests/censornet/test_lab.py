"""The lab's life cycle: up, status, env, exec, down, leftovers, and the rootless mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from censornet.lab import Lab, state_root
from censornet.netns import LabError

# What a lab runs: the Python servers per namespace, nginx (the web origins), nsd and the unbound
# resolvers, the control helper.
LAB_SERVERS = (
    "inet", "isp1", "isp2", "nginx", "nsd", "unbound-isp1", "unbound-isp2", "unbound-control",
    "helper", "h3origin",
)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BLOCKPROBE = [sys.executable, "-m", "blockprobe"]
NOBODY = 65534


def _cli(
    prefix: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, BLOCKPROBE_LAB_PREFIX=prefix, **(env or {}))
    return subprocess.run(
        [*BLOCKPROBE, "lab", *args], capture_output=True, text=True, env=environment, timeout=120
    )


def _namespaces(prefix: str) -> list[str]:
    if os.geteuid() != 0:
        return []
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(prefix + "-")]


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"bptl{os.getpid()}"
    yield name
    _cli(name, "down")
    assert [] == _namespaces(name)


def test_up_env_exec_status_down(prefix: str) -> None:
    """lab up builds every namespace and server; exec runs at a vantage with its ISP's resolver."""
    done = _cli(prefix, "up")
    assert 0 == done.returncode, done.stderr
    status = json.loads(_cli(prefix, "status", "--json").stdout)
    assert dict.fromkeys(LAB_SERVERS, True) == status["servers"]
    assert {"isp1": "clean", "isp2": "clean"} == status["scenario"]

    facts = dict(
        line.split("=", 1) for line in _cli(prefix, "env", "--vantage", "v2a").stdout.split()
    )
    assert "198.18.20.53" == facts["BLOCKPROBE_RESOLVER"]
    assert Path(facts["BLOCKPROBE_CA_FILE"]).read_text().startswith("-----BEGIN CERTIFICATE")

    resolv = _cli(prefix, "exec", "--vantage", "v1b", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 198.18.10.53" in resolv.stdout
    # The vantage reaches the platform through its ISP: a real TCP connect to X's first address.
    connect = _cli(
        prefix,
        "exec",
        "--vantage",
        "v1a",
        "--",
        sys.executable,
        "-c",
        "import socket; socket.create_connection(('198.18.100.10', 443), 2); print('connected')",
    )
    assert "connected" in connect.stdout, connect.stderr

    pids = [
        s["pid"] for s in json.loads((state_root() / prefix / "lab.json").read_text())["servers"]
    ]
    assert 0 == _cli(prefix, "down").returncode
    assert [] == _namespaces(prefix)
    assert not (state_root() / prefix).exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_commands_before_up_say_to_run_up(prefix: str) -> None:
    """Every command that needs a running lab says to run `lab up` first."""
    for args in (("status",), ("scenario", "clean"), ("env",), ("exec", "--", "true")):
        done = _cli(prefix, *args)
        assert 2 == done.returncode
        assert "lab up" in done.stderr


def test_next_up_cleans_a_crashed_run(prefix: str) -> None:
    """A leftover namespace and stale state of a crashed run are removed by the next `lab up`."""
    if os.geteuid() == 0:
        subprocess.run(["ip", "netns", "add", f"{prefix}-isp1"], check=True)
    stale = state_root() / prefix
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "lab.json").write_text("{not json")
    done = _cli(prefix, "up")
    assert 0 == done.returncode, done.stderr
    lab = Lab.locate(prefix)
    assert lab.run("isp1", ["ip", "-br", "addr"]).stdout.count("198.18.") >= 3


def test_a_failed_up_stops_the_servers_it_started(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that fails to start ends `lab up` with no process of the lab left running."""
    from censornet.processes import Tracked

    started: list[Tracked] = []
    spawn = Lab._spawn

    def tracking_spawn(self: Lab, name: str, role: str, argv: list[str]) -> Tracked:
        started.append(spawn(self, name, role, argv))
        return started[-1]

    def failing_helper(self: Lab) -> None:
        raise LabError("the helper did not start (made to fail by this test)")

    monkeypatch.setattr(Lab, "_spawn", tracking_spawn)
    monkeypatch.setattr(Lab, "_start_helper", failing_helper)
    with pytest.raises(LabError, match="made to fail"):
        Lab.up(prefix)
    assert len(started) >= 5
    assert [s.name for s in started if s.alive()] == []
    assert [] == _namespaces(prefix)


def test_locate_refuses_unknown_roles(prefix: str) -> None:
    """An unknown role is named together with the known ones."""
    assert 0 == _cli(prefix, "up").returncode
    with pytest.raises(LabError, match="known: inet, isp1"):
        Lab.locate(prefix).ns("isp9")


def _unprivileged_argv(argv: list[str]) -> list[str]:
    """argv that runs as the unprivileged user `nobody`, with this interpreter reachable.

    The interpreter may live under a directory others cannot enter (pyenv under /root): a private
    mount namespace shows it through a tmpfs with the same path, for this command only.
    """
    base = Path(sys.base_prefix).resolve()
    closed = next(
        (p for p in reversed(base.parents) if p != Path("/") and not os.stat(p).st_mode & 0o001),
        None,
    )
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    if closed is None:
        return [*drop, *argv]
    inner = base if base.parent == closed else next(p for p in base.parents if p.parent == closed)
    script = (
        'set -e; hold=$(mktemp -d); mount --bind "$1" "$hold"; '
        'mount -t tmpfs -o mode=0755 bp-root "$2"; mkdir -p "$1"; mount --move "$hold" "$1"; '
        'rmdir "$hold"; shift 2; exec "$@"'
    )
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        str(inner),
        str(closed),
        *drop,
        *argv,
    ]


@pytest.fixture
def unprivileged_home(tmp_path: Path) -> Iterator[Path]:
    """A directory the unprivileged user owns and can reach, removed afterwards.

    As root the test drops to `nobody`, who cannot enter pytest's per-user temporary directory:
    the home is then made in the system's temporary directory (it must be reachable by others).
    """
    if os.geteuid() != 0:
        yield tmp_path
        return
    home = Path(tempfile.mkdtemp(prefix="blockprobe-rootless-"))
    try:
        os.chown(home, NOBODY, NOBODY)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_rootless_lab_as_unprivileged_user(unprivileged_home: Path) -> None:
    """As an unprivileged user the same lab runs in user namespaces: up, reach X, down."""
    prefix = f"bptu{os.getpid()}"
    env = {
        "BLOCKPROBE_LAB_PREFIX": prefix,
        "BLOCKPROBE_LAB_STATE": str(unprivileged_home / "lab"),
        "HOME": str(unprivileged_home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    code = (
        "import json, socket, sys\n"
        "from censornet.lab import Lab\n"
        "lab = Lab.up()\n"
        "try:\n"
        "    assert lab.mode == 'userns', lab.mode\n"
        "    out = lab.run('v1a', [sys.executable, '-c', \"import socket, os; "
        "socket.create_connection(('198.18.100.10', 443), 2); print(os.geteuid())\"]).stdout\n"
        "    print(json.dumps({'mode': lab.mode, 'inside_uid': out.strip(), "
        "'servers': lab.status()['servers']}))\n"
        "finally:\n"
        "    lab.down()\n"
    )
    argv = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        argv = _unprivileged_argv(argv)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert 0 == done.returncode, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "userns" == report["mode"]
    assert dict.fromkeys(LAB_SERVERS, True) == report["servers"]
    assert [] == _namespaces(prefix)
