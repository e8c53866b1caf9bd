"""The built wheel, installed in a fresh virtual environment: the commands and the platform files.

The wheel is built as a volunteer builds it (``pip wheel``, which fetches setuptools like
``make install`` does) from a copy of the source tree (a build writes ``build/`` next to the
sources), and installed with ``--no-deps`` into a new venv. The dependencies come from this
test's own environment through a ``.pth`` file, which saves the minutes of a full install;
``pip check`` confirms that they satisfy what the wheel declares.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "blockprobe",
    "probe",
    "translog",
    "collectors",
    "reports",
    "censornet",
    "config",
)


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    assert 0 == done.returncode, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_in_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source)
    [wheel] = dist.glob("blockprobe-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    borrowed = sysconfig.get_paths()["purelib"]  # the dependencies, from this environment
    (Path(site) / "deps.pth").write_text(borrowed + "\n")
    run(python, "-m", "pip", "check")

    blockprobe = env_dir / "bin" / "blockprobe"
    assert "run" in run(blockprobe, "--help", cwd=tmp_path)
    assert "--verbose" in run(blockprobe, "run", "--help", cwd=tmp_path)
    code = "import probe, probe.platforms as p; print(probe.__file__, p.BUILTIN_DIR)"
    where = run(python, "-c", code, cwd=tmp_path)
    module, platforms = where.split()
    assert Path(module).is_relative_to(env_dir)  # the installed copy, not the source tree
    assert Path(platforms).is_relative_to(env_dir) and (Path(platforms) / "x.toml").is_file()
    example = ROOT / "config" / "probe.example.toml"
    checked = run(blockprobe, "config", "check", example, cwd=tmp_path)
    assert "ok" in checked and "x:" in checked
