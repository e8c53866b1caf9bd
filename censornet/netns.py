"""How commands reach the lab's namespaces: as root with ``ip netns``, or rootless inside one
user + network + mount namespace (``unshare -rnm``) that holds the whole topology.

In rootless mode a long-lived *holder* process owns the user and mount namespaces; ``/run`` is a
private tmpfs there, so ``ip netns add`` works without privileges, and every lab command enters the
holder with ``nsenter`` first. Nothing of the rootless lab is visible outside the holder, and it
all disappears when the holder dies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["netns", "userns"]

REQUIRED_TOOLS = (
    "ip", "iptables", "iptables-restore", "ip6tables-restore", "conntrack", "tc", "unshare",
    "nsenter",
)  # fmt: skip


class LabError(RuntimeError):
    """A lab operation failed; the message says what to do."""


def missing_tools() -> list[str]:
    """The commands the lab needs that are not on PATH."""
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def choose_mode() -> Mode:
    """``netns`` as root, ``userns`` otherwise (raises LabError when neither can work)."""
    missing = missing_tools()
    if missing:
        raise LabError(
            "the lab needs these commands: "
            + ", ".join(missing)
            + " (Debian: apt-get install iproute2 iptables conntrack util-linux)"
        )
    if os.geteuid() == 0 and os.environ.get("BLOCKPROBE_LAB_ROOTLESS") != "1":
        return "netns"
    max_userns = Path("/proc/sys/user/max_user_namespaces")
    if max_userns.exists() and max_userns.read_text().strip() == "0":
        raise LabError(
            "this machine has no user namespaces (user.max_user_namespaces = 0): run the lab as "
            "root, or enable them with sysctl -w user.max_user_namespaces=10000"
        )
    return "userns"


@dataclass(frozen=True)
class Shell:
    """Builds argv that run inside the lab, in root or rootless mode."""

    mode: Mode
    holder_pid: int | None = None

    def enter(self) -> list[str]:
        """The argv prefix that enters the lab's mount namespace (empty as root)."""
        if self.mode == "netns":
            return []
        if self.holder_pid is None:
            raise LabError("rootless lab without a holder process")
        return [
            "nsenter",
            f"--target={self.holder_pid}",
            "--user",
            "--mount",
            "--net",
            "--preserve-credentials",
            "--",
        ]

    def in_ns(
        self, namespace: str, argv: Sequence[str], resolv_conf: Path | None = None
    ) -> list[str]:
        """argv that runs ``argv`` in network namespace ``namespace``.

        With ``resolv_conf``, that file is bind-mounted over /etc/resolv.conf for the command only
        (``ip netns exec`` gives each command a private mount namespace).
        """
        inner = list(argv)
        if resolv_conf is not None:
            inner = [
                "sh",
                "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                str(resolv_conf),
                *inner,
            ]
        return [*self.enter(), "ip", "netns", "exec", namespace, *inner]

    def script(self, text: str, *, timeout: float = 60) -> None:
        """Run a ``sh -e`` script inside the lab (in the holder in rootless mode)."""
        argv = [*self.enter(), "sh", "-e", "-c", text]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise LabError(f"lab command failed ({done.returncode}): {done.stderr.strip()[-800:]}")


def start_holder(log: Path) -> int:
    """Start the rootless holder and return its PID once its namespaces are ready."""
    ready = log.with_name("holder.ready")
    ready.unlink(missing_ok=True)
    script = (
        "mount -t tmpfs -o mode=0755 blockprobe-run /run && mkdir -p /run/netns && "
        f'touch "{ready}" && exec sleep infinity'
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None:
            raise LabError(
                f"could not create user namespaces (unshare exited {proc.returncode}); see {log}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise LabError(f"the rootless holder did not start in 10 s; see {log}")
        time.sleep(0.02)
    return proc.pid
