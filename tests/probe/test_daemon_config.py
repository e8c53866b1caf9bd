"""The [daemon] table, environment overrides, config file discovery and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from probe.commands.daemon import register
from probe.configfile import ConfigError
from probe.daemon.settings import choose_config, load_files


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


def test_environment_values_read_as_toml_and_only_known_names(tmp_path):
    """A quoted TOML string, a bad top-level value named with its variable; lower-case names,
    unknown keys of a table and a whole table in one variable are no overrides."""
    env = {
        "BLOCKPROBE_DAEMON_LOG_LEVEL": '"debug"',
        "blockprobe_daemon_metered": "true",
        "BLOCKPROBE_DAEMON_NO_SUCH_KEY": "1",
        "BLOCKPROBE_DAEMON": "{metered = true}",
        "BLOCKPROBE_TIMEOUTS_DNS": "2.5",
    }
    loaded = load_files(None, env=env)
    assert ("debug", False) == (loaded.daemon.log_level, loaded.daemon.metered)
    assert 2.5 == loaded.probe.timeouts.dns
    assert ("BLOCKPROBE_DAEMON_LOG_LEVEL", "BLOCKPROBE_TIMEOUTS_DNS") == loaded.overrides
    with pytest.raises(ConfigError) as info:
        load_files(None, env={"BLOCKPROBE_RETRIES": "many"})
    (problem,) = info.value.problems
    assert ("(defaults)", "retries") == (problem.file, problem.key)
    assert "(set by $BLOCKPROBE_RETRIES)" in problem.reason


def test_config_file_discovery_order_and_why(tmp_path, monkeypatch):
    """--config, $BLOCKPROBE_CONFIG, then the user's or the system's file; each with its reason."""
    system = tmp_path / "etc" / "probe.toml"
    monkeypatch.setattr("probe.daemon.settings.SYSTEM_CONFIG", system)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home")}
    user = tmp_path / "home" / "blockprobe" / "probe.toml"
    assert "given with --config" == choose_config(Path("/a.toml"), env).why
    named = choose_config(None, {**env, "BLOCKPROBE_CONFIG": "/x.toml"})
    assert (Path("/x.toml"), "named by $BLOCKPROBE_CONFIG") == (named.path, named.why)
    none = choose_config(None, env)
    assert none.path is None and str(user) in none.why and str(system) in none.why
    user.parent.mkdir(parents=True)
    user.write_text("")
    for uid in (0, 1000):  # root's own ~/.config file is read like anyone's, never skipped
        monkeypatch.setattr("os.geteuid", lambda uid=uid: uid)
        mine = choose_config(None, env)
        assert user == mine.path and "user's file" in mine.why
    system.parent.mkdir()
    system.write_text("")
    with pytest.raises(ConfigError) as refused:
        choose_config(None, env)
    assert str(user) in refused.value.reason and str(system) in refused.value.reason
    assert "--config" in refused.value.reason
    user.unlink()
    assert system == choose_config(None, env).path


def test_unknown_platforms_are_named_with_every_other_problem(tmp_path):
    """Unknown names in platforms and [daemon.schedule] come with the other problems, in the
    file's own key paths and words (no validator internals), with the closest known name."""
    path = write(
        tmp_path,
        'platforms = ["x", "youtub"]\nretries = 9\n[daemon]\ninterval = 0\n'
        '[daemon.schedule]\ntwiter = 600\nx = -5\nyoutube = "bad cron"\nfacebook = true\n',
    )
    with pytest.raises(ConfigError) as info:
        load_files(path, env={})
    reasons = {p.key: p.reason for p in info.value.problems}
    assert {
        "retries",
        "daemon.interval",
        "platforms[1]",
        "daemon.schedule.twiter",
        "daemon.schedule.x",
        "daemon.schedule.youtube",
        "daemon.schedule.facebook",
    } == set(reasons)
    assert (
        "unknown platform 'twiter' (did you mean 'x', X (Twitter)?)"
        in reasons["daemon.schedule.twiter"]
    )
    assert "did you mean 'youtube'" in reasons["platforms[1]"]
    assert "1 to 604800 seconds" in reasons["daemon.schedule.x"]
    assert "not a crontab expression" in reasons["daemon.schedule.youtube"]
    text = str(info.value)
    for internal in ("constrained-float", "function-after", "Value error", "[type="):
        assert internal not in text
    assert all(p.file == str(path) for p in info.value.problems)


def test_state_dir_discovery(tmp_path, monkeypatch):
    """One rule for every command: --state-dir, [daemon] state_dir ($BLOCKPROBE_STATE_DIR),
    $STATE_DIRECTORY (systemd), /var/lib/blockprobe for root, $XDG_STATE_HOME for a user."""
    from probe.daemon.state import SYSTEM_STATE, choose_state_dir, default_state_dir

    assert Path("/var/lib/blockprobe") == default_state_dir(
        {"STATE_DIRECTORY": "/var/lib/blockprobe"}
    )
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert SYSTEM_STATE == default_state_dir({})
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert tmp_path / "blockprobe" == default_state_dir({"XDG_STATE_HOME": str(tmp_path)})
    assert (Path("/o"), "given with --state-dir") == choose_state_dir(Path("/o"), Path("/c"))
    loaded = load_files(None, env={"BLOCKPROBE_STATE_DIR": str(tmp_path / "env")})
    assert (tmp_path / "env", "set by $BLOCKPROBE_STATE_DIR") == loaded.state_dir()
    path = write(tmp_path, '[daemon]\nstate_dir = "st"\n')
    where, why = load_files(path, env={}).state_dir()
    assert tmp_path / "st" == where and str(path) in why


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


def test_config_check_without_a_file_checks_the_daemons_choice(tmp_path, monkeypatch):
    """`config check` alone names the file the daemon would use and why, or refuses to guess."""
    monkeypatch.delenv("BLOCKPROBE_CONFIG", raising=False)
    monkeypatch.delenv("CONFIGURATION_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    system = tmp_path / "etc" / "probe.toml"
    monkeypatch.setattr("probe.daemon.settings.SYSTEM_CONFIG", system)
    app = typer.Typer()
    register(app)
    user = tmp_path / "home" / "blockprobe" / "probe.toml"
    user.parent.mkdir(parents=True)
    user.write_text('platforms = ["x"]\n')
    result = CliRunner().invoke(app, ["config", "check"])
    assert 0 == result.exit_code, result.output
    assert f"{user}: ok (the user's file ({system} does not exist))" in result.output
    system.parent.mkdir()
    system.write_text("")
    result = CliRunner().invoke(app, ["config", "check"])
    assert 2 == result.exit_code
    assert "both" in result.output and "--config" in result.output
