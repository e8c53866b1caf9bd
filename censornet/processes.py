"""Processes the lab started, identified by PID *and* start time so a recycled PID is never hit."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` in clock ticks, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[19])  # field 22 of proc(5), counted after the ")" of the command name


@dataclass(frozen=True)
class Tracked:
    """A process the lab started."""

    name: str
    pid: int
    started: int

    @classmethod
    def of(cls, name: str, pid: int) -> Tracked:
        """Record ``pid`` as it is now."""
        return cls(name=name, pid=pid, started=start_time(pid) or 0)

    def alive(self) -> bool:
        """True while the very process we started is still running (not a zombie)."""
        if start_time(self.pid) != self.started:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; only if it is still our process."""
        if not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self.alive():
                self._reap()
                return
            time.sleep(0.02)
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass  # not our child (started by an earlier command): init reaps it
