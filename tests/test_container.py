"""The container image (packaging/Dockerfile): built and run once where an engine can do it.

Needs podman or docker and the base image from its registry. Where either is missing the test
is skipped and says which (a machine without outside network cannot pull the base image).
Nothing stays behind: the image built here is removed, and so is the base image if this test
pulled it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "packaging" / "Dockerfile"


def base_image() -> str:
    return next(
        line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("FROM ")
    )


def engine() -> str:
    for name in ("podman", "docker"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no container engine (Debian: apt-get install podman)")


def run(*argv: str, timeout: float = 120) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert 0 == done.returncode, f"{argv}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def test_the_image_builds_and_runs() -> None:
    tool = engine()
    base = base_image()
    had_base = 0 == subprocess.run([tool, "image", "inspect", base], capture_output=True).returncode
    if not had_base:
        pulled = subprocess.run([tool, "pull", base], capture_output=True, text=True, timeout=600)
        if pulled.returncode != 0:
            reason = (pulled.stderr.strip().splitlines() or ["(no message)"])[-1]
            pytest.skip(f"{tool} cannot pull the base image {base}: {reason}")
    tag = f"localhost/blockprobe-test:{os.getpid()}"
    try:
        # podman: chroot isolation also builds inside a container whose cgroups crun cannot use
        isolation = ["--isolation", "chroot"] if Path(tool).name == "podman" else []
        run(tool, "build", *isolation, "-f", str(DOCKERFILE), "-t", tag, str(ROOT), timeout=1800)
        assert "daemon" in run(tool, "run", "--rm", tag, "--help")
        assert "consent" in run(tool, "run", "--rm", tag, "daemon", "--show-consent").lower()
        assert '"budget"' in run(tool, "run", "--rm", tag, "status", "--offline", "--json")
    finally:
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True)
        if not had_base:
            subprocess.run([tool, "rmi", "-f", base], capture_output=True)
