"""The [daemon] table, environment overrides, config file discovery and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from probe.configfile import ConfigError
from probe.daemon_cli import register
from probe.daemon_config import config_path, load_files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "probe.toml"
    path.write_text(text)
    return path


def test_the_daemon_table_and_the_probe_keys_load_from_one_file(tmp_path):
    """One file: probe keys for run_check, [daemon] for the daemon; relative state_dir."""
    path = write(
        tmp_path,
        'retries = 2\n[budget]\nrun_bytes = 5000\n[daemon]\ninterval = 900\nstate_dir = "st"\n'
        'collector_url = "https://c.example"\n[daemon.schedule]\nx = "*/20 * * * *"\n',
    )
    loaded = load_files(path, env={})
    assert (2, 5000) == (loaded.probe.retries, loaded.probe.budget.run_bytes)
    assert 900.0 == loaded.daemon.interval
    assert tmp_path / "st" == loaded.daemon.state_dir
    assert "*/20 * * * *" == loaded.daemon.when("x")
    assert str(path) == loaded.probe.source


def test_every_key_can_be_overridden_from_the_environment(tmp_path):
    """BLOCKPROBE_<KEY> and BLOCKPROBE_<SECTION>_<KEY>, TOML values or bare strings."""
    path = write(tmp_path, "retries = 2\n[daemon]\ninterval = 900\n")
    env = {
        "BLOCKPROBE_RETRIES": "0",
        "BLOCKPROBE_PLATFORMS": '["x", "youtube"]',
        "BLOCKPROBE_BUDGET_RUN_BYTES": "12345",
        "BLOCKPROBE_VANTAGE_COUNTRY": "PK",
        "BLOCKPROBE_DAEMON_METERED": "true",
        "BLOCKPROBE_DAEMON_COLLECTOR_URL": "https://collector.example/",
        "BLOCKPROBE_DAEMON_SCHEDULE": "{x = 600}",
        "BLOCKPROBE_UNRELATED": "ignored",
    }
    loaded = load_files(path, env=env)
    assert 0 == loaded.probe.retries
    assert ("x", "youtube") == loaded.probe.platforms
    assert 12345 == loaded.probe.budget.run_bytes
    assert "PK" == loaded.probe.vantage.country
    assert loaded.daemon.metered is True
    assert "https://collector.example/" == loaded.daemon.collector_url
    assert 600.0 == loaded.daemon.when("x")
    assert "BLOCKPROBE_UNRELATED" not in loaded.overrides
    assert "BLOCKPROBE_DAEMON_METERED" in loaded.overrides


def test_defaults_with_no_file(tmp_path):
    """No file: built-in defaults, env still applies."""
    loaded = load_files(None, env={"BLOCKPROBE_DAEMON_DAILY_BYTES": "99"})
    assert 99 == loaded.daemon.daily_bytes and "(defaults)" == loaded.probe.source


def test_bad_keys_are_all_named_with_file_and_variable(tmp_path):
    """Unknown keys and bad values in both halves, one problem each; env ones name the variable."""
    path = write(tmp_path, 'retries = 9\nbogus = 1\n[daemon]\ninterval = 0\nlog_format = "xml"\n')
    with pytest.raises(ConfigError) as info:
        load_files(path, env={"BLOCKPROBE_DAEMON_METRICS_PORT": "70000"})
    keys = {p.key: p.reason for p in info.value.problems}
    assert {
        "retries",
        "bogus",
        "daemon.interval",
        "daemon.log_format",
        "daemon.metrics_port",
    } == set(keys)
    assert "unknown key" == keys["bogus"]
    assert "BLOCKPROBE_DAEMON_METRICS_PORT" in keys["daemon.metrics_port"]
    assert all(p.file == str(path) for p in info.value.problems)


def test_config_file_discovery_order(tmp_path, monkeypatch):
    """$BLOCKPROBE_CONFIG, then $XDG_CONFIG_HOME/blockprobe/probe.toml (non-root), else None."""
    assert Path("/x.toml") == config_path({"BLOCKPROBE_CONFIG": "/x.toml"})
    user = tmp_path / "blockprobe" / "probe.toml"
    user.parent.mkdir()
    user.write_text("")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("probe.daemon_config.SYSTEM_CONFIG", tmp_path / "none.toml")
    assert user == config_path({"XDG_CONFIG_HOME": str(tmp_path)})
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "empty")}) is None
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) is None


def test_state_dir_discovery(tmp_path, monkeypatch):
    """$STATE_DIRECTORY (systemd), /var/lib/blockprobe for root, $XDG_STATE_HOME for a user."""
    from probe.state import SYSTEM_STATE, default_state_dir

    assert Path("/var/lib/blockprobe") == default_state_dir(
        {"STATE_DIRECTORY": "/var/lib/blockprobe"}
    )
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert SYSTEM_STATE == default_state_dir({})
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert tmp_path / "blockprobe" == default_state_dir({"XDG_STATE_HOME": str(tmp_path)})


def test_config_check_command(tmp_path, monkeypatch):
    """`config check` exits 0 with a summary for a good file, 2 naming each bad key."""
    for var in ("BLOCKPROBE_CONFIG", "BLOCKPROBE_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    app = typer.Typer()
    register(app)
    good = write(tmp_path, 'platforms = ["x"]\n[daemon]\ninterval = 600\n')
    result = runner.invoke(app, ["config", "check", str(good)])
    assert 0 == result.exit_code, result.output
    assert "ok" in result.output and "x: every 600s" in result.output
    bad = write(tmp_path, 'platforms = ["nope"]\n[daemon]\nmetred = true\n')
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert 2 == result.exit_code
    assert "daemon.metred: unknown key" in result.output
    bad.write_text('platforms = ["nope"]\n')
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert 2 == result.exit_code and "unknown platform 'nope'" in result.output
    result = runner.invoke(app, ["config", "check", str(tmp_path / "missing.toml")])
    assert 2 == result.exit_code and "no such file" in result.output
