"""`blockprobe lab check` before it runs anything: catalogue validation, selection, usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from censornet.catalogue import CATALOGUE_RESOURCE, scenario_ids
from censornet.check.runner import CheckError, select

CATALOGUE = Path(__file__).resolve().parents[3] / "censornet" / CATALOGUE_RESOURCE
SCENARIO = """
[[scenario]]
id = "my-reset"
title = "Resets on X's addresses"
description = "A test scenario."
category = "block"
scope = "isp"

[scenario.iptables]
filter = "-A BP_FWD -d {X_IPS} -p tcp -j REJECT --reject-with tcp-reset"

[[scenario.expect]]
target = "*"
verdict = "blocked"
method = "tcp.reset"
"""


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blockprobe", "lab", "check", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "BLOCKPROBE_LAB_PREFIX": "bpnolab"},
    )  # fmt: skip


def test_a_valid_catalogue_file_is_listed_by_dry_run(tmp_path: Path) -> None:
    """--dry-run validates the file and lists what would run, without a lab."""
    path = tmp_path / "mine.toml"
    path.write_text(SCENARIO)
    done = _check("--catalogue", str(path), "--dry-run", "--isp", "isp2")
    assert 0 == done.returncode, done.stderr
    assert "my-reset" in done.stdout and "applied to isp2, probe at v2a" in done.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('method = "tcp.reset"', 'method = "tcp.rst"'),
            "scenario 'my-reset': expect.0: method 'tcp.rst' is not in the verdict vocabulary\n",
        ),
        (('category = "block"', 'category = "blocky"'), "scenario 'my-reset': category"),
        (('target = "*"', 'target = "https://*"'), 'the last entry must have target = "*"'),
        (("{X_IPS}", "{X_IP}"), "unknown placeholder {X_IP}"),
        (('title = "Resets', 'titel = "Resets'), "scenario 'my-reset': title"),
        (("[[scenario]]", "[[scenarios]]"), "unknown top-level keys"),
    ],
)
def test_a_broken_catalogue_names_the_entry_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    """Validation happens before anything runs; the error names the scenario and the key."""
    path = tmp_path / "broken.toml"
    path.write_text(SCENARIO.replace(*change))
    done = _check("--catalogue", str(path))
    assert 2 == done.returncode
    assert f"--catalogue {path}:" in done.stderr and message in done.stderr + "\n"
    assert "Traceback" not in done.stderr


def test_usage_errors_are_clear() -> None:
    """Unknown ids, ISPs, vantage points and files; no lab up: exit 2, one line, no traceback."""
    for args, message in (
        (("--only", "no-such"), "unknown scenario id 'no-such'"),
        (("--isp", "isp9"), "unknown ISP 'isp9'"),
        (("--vantage", "v2a"), "vantage 'v2a' is not on isp1"),
        (("--catalogue", "/nonexistent.toml"), "cannot read it"),
        (("--only", "clean"), "no lab 'bpnolab' is up"),
    ):
        done = _check(*args)
        assert 2 == done.returncode, args
        assert message in done.stderr and "Traceback" not in done.stderr


def test_the_packaged_catalogue_file_is_valid() -> None:
    """The shipped catalogue passes the same validation a --catalogue file gets."""
    done = _check("--catalogue", str(CATALOGUE), "--dry-run")
    assert 0 == done.returncode, done.stderr
    assert len(scenario_ids()) == len(done.stdout.splitlines())


def test_selection_keeps_catalogue_order_or_shuffles_by_seed() -> None:
    """--only keeps catalogue order; the same seed gives the same order, another seed another."""
    from censornet.catalogue import load_catalogue

    catalogue = load_catalogue()
    assert ["clean", "sni-reset"] == [s.id for s in select(catalogue, ["sni-reset", "clean"])]
    first = [s.id for s in select(catalogue, (), seed=1)]
    assert first == [s.id for s in select(catalogue, (), seed=1)]
    assert first != [s.id for s in select(catalogue, (), seed=2)]
    assert sorted(first) == sorted(scenario_ids())
    with pytest.raises(CheckError, match="known: clean, dns-nxdomain"):
        select(catalogue, ["nope"])
