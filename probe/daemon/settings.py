"""The daemon's settings (the ``[daemon]`` table of ``probe.toml``) and how the file is found.

``load_files`` reads one TOML file into the probe configuration (``ProbeConfig``) and the daemon
settings (``DaemonConfig``), after applying environment overrides: every key of the file can be
set by ``BLOCKPROBE_<KEY>`` (top level) or ``BLOCKPROBE_<SECTION>_<KEY>`` (a table), the value
written as a TOML value (``30``, ``true``, ``["x", "youtube"]``) or as a bare string.
pydantic-settings finds the variables; a bad value names its key and its variable.

``choose_config`` finds the file and says why: ``--config``, else ``$BLOCKPROBE_CONFIG``, else
systemd's ``$CONFIGURATION_DIRECTORY/probe.toml``, else the user's
``$XDG_CONFIG_HOME/blockprobe/probe.toml`` or the system's ``/etc/blockprobe/probe.toml``,
whichever exists; when both exist it refuses to guess. ``load_files`` names every problem of the
file at once: bad values, unknown keys, and platform names (in ``platforms`` and in
``[daemon.schedule]``) that no platform file defines, with the closest known name.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field, PlainValidator, SecretStr, ValidationError

from probe.config import ProbeConfig
from probe.configfile import ConfigError, Problem, problems_of, read_toml
from probe.daemon.state import choose_state_dir
from probe.model.base import FrozenModel
from probe.platforms import Platform, Url

SYSTEM_CONFIG = Path("/etc/blockprobe/probe.toml")
CONFIG_NAME = "probe.toml"
ENV_PREFIX = "BLOCKPROBE_"
MiB = 1024 * 1024


MIN_INTERVAL, MAX_INTERVAL = 1.0, 7 * 86400.0
Interval = Annotated[float, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL)]


def _when(value: object) -> float | str:
    """A schedule: seconds between runs, or a crontab expression; one reason when neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not MIN_INTERVAL <= value <= MAX_INTERVAL:
            raise ValueError(
                f"{value!r} seconds is out of range: an interval is {MIN_INTERVAL:g} to"
                f" {MAX_INTERVAL:g} seconds (or write a crontab expression)"
            )
        return float(value)
    if isinstance(value, str):
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a crontab expression (m h dom mon dow): {exc}"
            ) from None
        return value
    shown = str(value).lower() if isinstance(value, bool) else repr(value)  # as TOML writes it
    raise ValueError(
        f'{shown} is neither a number of seconds nor a crontab expression ("*/30 * * * *")'
    )


When = Annotated[float | str, PlainValidator(_when)]


class DaemonConfig(FrozenModel):
    """How the daemon schedules, uploads, budgets and reports. Times in seconds, sizes in bytes."""

    interval: Interval = 1800.0  # each platform, unless ``schedule`` says otherwise
    jitter: float = Field(default=300.0, ge=0.0, le=86400.0)  # random delay added to each run
    schedule: dict[str, When] = Field(default_factory=dict)  # platform -> when
    upload_interval: Interval = 300.0  # how often the outbox is drained
    misfire_grace: float = Field(default=600.0, gt=0.0)  # a run this late is skipped, not caught up
    collector_url: Url | None = None  # unset: bundles stay in the outbox
    enroll_token: SecretStr | None = None  # for a collector that enrols keys by token
    state_dir: Path | None = None  # unset: $STATE_DIRECTORY, /var/lib or $XDG_STATE_HOME
    metered: bool = False  # skip throughput and upload transfers (a metered connection)
    daily_bytes: int = Field(default=64 * MiB, ge=0)  # all runs and uploads of one (local) day
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_file: bool = False  # also write <state>/logs/daemon.log (rotated)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # /metrics on 127.0.0.1

    def when(self, platform: str) -> float | str:
        """The schedule of ``platform``: an interval in seconds or a crontab expression."""
        return self.schedule.get(platform, self.interval)


@dataclass(frozen=True)
class LoadedConfig:
    """Both halves of one configuration file, and the environment variables that changed it."""

    probe: ProbeConfig
    daemon: DaemonConfig
    path: Path | None
    overrides: tuple[str, ...] = field(default=())
    applied: Mapping[str, str] = field(default_factory=dict)  # dotted key -> variable
    why: str = ""  # why this file (``ConfigChoice.why``)

    def state_dir(self, option: Path | None = None) -> tuple[Path, str]:
        """The state directory every command uses with this configuration, and why."""
        return choose_state_dir(
            option,
            self.daemon.state_dir,
            set_by=self.applied.get("daemon.state_dir"),
            source=self.probe.source,
        )


@dataclass(frozen=True)
class ConfigChoice:
    """The configuration file to use (None: built-in defaults) and why that one."""

    path: Path | None
    why: str


def user_config(env: Mapping[str, str]) -> Path:
    """The user's own file: ``$XDG_CONFIG_HOME/blockprobe/probe.toml`` (``~/.config``)."""
    home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(home) / "blockprobe" / CONFIG_NAME


def choose_config(option: Path | None = None, env: Mapping[str, str] | None = None) -> ConfigChoice:
    """Which file to read, and why; a ``ConfigError`` when the user's and the system's both exist.

    Root reads its own ``~/.config/blockprobe/probe.toml`` like any user: a file that exists is
    never skipped silently.
    """
    env = os.environ if env is None else env
    if option is not None:
        return ConfigChoice(option, "given with --config")
    if env.get("BLOCKPROBE_CONFIG"):
        return ConfigChoice(Path(env["BLOCKPROBE_CONFIG"]), "named by $BLOCKPROBE_CONFIG")
    if env.get("CONFIGURATION_DIRECTORY"):  # systemd's ConfigurationDirectory=
        path = Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / CONFIG_NAME
        if path.is_file():
            return ConfigChoice(path, "in systemd's $CONFIGURATION_DIRECTORY")
    user, system = user_config(env), SYSTEM_CONFIG
    if user.is_file() and system.is_file():
        raise ConfigError.single(
            user,
            "(file)",
            f"both {user} (yours) and {system} (the system's) exist: say which one with"
            " --config FILE or $BLOCKPROBE_CONFIG, or remove the other",
        )
    if user.is_file():
        return ConfigChoice(user, f"the user's file ({system} does not exist)")
    if system.is_file():
        return ConfigChoice(system, f"the system's file ({user} does not exist)")
    return ConfigChoice(None, f"built-in defaults: neither {user} nor {system} exists")


def _env_value(text: str) -> Any:
    """A variable's value as TOML (``30``, ``true``, ``["x"]``, ``{x = 600}``), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _tables() -> dict[str, type[BaseModel] | None]:
    """Every top-level key of probe.toml: the model of its table, or None for a plain value."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in ProbeConfig.model_fields.items():
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        out[name] = annotation if is_model else None  # type: ignore[assignment]
    out["daemon"] = DaemonConfig
    return out


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``BLOCKPROBE_*`` variables of ``env`` that name a key, as pydantic-settings finds them:
    ``{key: text}`` for a plain key, ``{table: {key: text}}`` for a key of a table.

    Imported here, not at the top: commands that never read the environment (``--help``) do not
    load pydantic-settings.
    """
    from pydantic import create_model
    from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

    tables = _tables()
    whole = {f"{ENV_PREFIX}{name.upper()}" for name, table in tables.items() if table}

    class Variables(BaseSettings):
        # BLOCKPROBE_<KEY>, BLOCKPROBE_<TABLE>_<KEY> (split at the first "_" after the table)
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX,
            env_nested_delimiter="_",
            env_nested_max_split=1,
            extra="ignore",
        )

    fields: dict[str, Any] = {
        name: (dict[str, Any] | None if table else Any, None) for name, table in tables.items()
    }
    model = create_model("BlockprobeVariables", __base__=Variables, **fields)

    class Source(EnvSettingsSource):
        """The source over ``env``; the variable names are upper case, as documented; a whole
        table in one variable (``BLOCKPROBE_DAEMON``) is not a key."""

        def _load_env_vars(self) -> Mapping[str, str | None]:
            return {
                name.lower(): value
                for name, value in env.items()
                if name.startswith(ENV_PREFIX) and name.isupper() and name not in whole
            }

    found: dict[str, Any] = Source(model)()
    return found


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Set every key some ``BLOCKPROBE_*`` variable overrides; returns {dotted key: variable}.

    Only keys that probe.toml has are taken (another ``BLOCKPROBE_*`` variable, such as
    ``BLOCKPROBE_CONFIG``, is no key); each value is read as TOML (``_env_value``).
    """
    applied: dict[str, str] = {}
    found = read_env(env)
    for name, table in _tables().items():
        value = found.get(name)
        if value is None:
            continue
        if table is None:
            data[name] = _env_value(value)
            applied[name] = f"{ENV_PREFIX}{name.upper()}"
            continue
        for key, text in value.items():
            section = data.setdefault(name, {})
            if key not in table.model_fields or not isinstance(section, dict):
                continue  # a file whose table is not a table is reported by validation
            section[key] = _env_value(text)
            applied[f"{name}.{key}"] = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
    if "daemon.state_dir" not in applied and env.get("BLOCKPROBE_STATE_DIR"):
        data.setdefault("daemon", {})["state_dir"] = env["BLOCKPROBE_STATE_DIR"]
        applied["daemon.state_dir"] = "BLOCKPROBE_STATE_DIR"
    return applied


def load_chosen(option: Path | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The configuration ``choose_config`` picks, loaded, with the reason it was picked."""
    choice = choose_config(option, env)
    loaded = load_files(choice.path, env)
    return dataclasses.replace(loaded, why=choice.why)


def load_files(path: Path | None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """The probe and daemon configuration in ``path`` (defaults when None), env applied.

    Raises ``ConfigError`` naming the file, every bad key and why; a key set from the environment
    names its variable.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    applied = apply_env(data, env)
    source = str(path) if path is not None else "(defaults)"
    daemon_data = data.pop("daemon", {})
    base = path.resolve().parent if path is not None else Path.cwd()
    problems: list[Problem] = []
    probe: ProbeConfig | None = None
    daemon: DaemonConfig | None = None
    try:
        probe = ProbeConfig.model_validate(data, context={"base": base})
    except ValueError as exc:
        problems += _blame(exc, source, "", applied)
    if not isinstance(daemon_data, dict):
        problems.append(Problem(source, "daemon", "must be a table ([daemon])"))
    else:
        try:
            daemon = DaemonConfig.model_validate(daemon_data)
        except ValueError as exc:
            problems += _blame(exc, source, "daemon.", applied)
    problems += _platform_problems(probe, data, daemon_data, source, base, applied)
    if probe is not None:
        probe._source = source
        try:
            probe.to_settings()
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    assert probe is not None and daemon is not None
    if daemon.state_dir is not None and not daemon.state_dir.is_absolute():
        daemon = daemon.model_copy(update={"state_dir": base / daemon.state_dir.expanduser()})
    return LoadedConfig(probe, daemon, path, tuple(sorted(set(applied.values()))), applied)


def _platform_problems(
    probe: ProbeConfig | None,
    data: Mapping[str, Any],
    daemon_data: object,
    source: str,
    base: Path,
    applied: Mapping[str, str],
) -> list[Problem]:
    """Platform names in ``platforms`` and ``[daemon.schedule]`` that no platform file defines."""
    if probe is None:  # the rest of the file is wrong: the platform keys alone may still be right
        keys = {k: data[k] for k in ("builtin_platforms", "platform_dirs") if k in data}
        try:
            probe = ProbeConfig.model_validate(keys, context={"base": base})
        except ValueError:
            return []  # already reported
    try:
        known = probe.load_platforms()
    except ConfigError as exc:
        return list(exc.problems)
    asked: list[tuple[str, object]] = []
    names = data.get("platforms")
    if isinstance(names, list):
        asked += [(f"platforms[{i}]", n) for i, n in enumerate(names)]
    schedule = daemon_data.get("schedule") if isinstance(daemon_data, dict) else None
    if isinstance(schedule, dict):
        asked += [(f"daemon.schedule.{n}", n) for n in schedule]
    out = []
    for key, name in asked:
        if isinstance(name, str) and name not in known:
            var = applied.get("platforms" if key.startswith("platforms") else "daemon.schedule")
            reason = unknown_platform(name, known.values())
            out.append(Problem(source, key, f"{reason} (set by ${var})" if var else reason))
    return out


def unknown_platform(name: str, known: Iterable[Platform]) -> str:
    """``unknown platform 'twiter' (did you mean 'x', X (Twitter)?); known: ...``."""
    platforms = sorted(known, key=lambda p: p.name)
    words: dict[str, Platform] = {}
    for p in platforms:
        words[p.name.lower()] = p
        for word in p.title.lower().replace("(", " ").replace(")", " ").split():
            words.setdefault(word, p)
    close = difflib.get_close_matches(name.lower(), list(words), n=1, cutoff=0.6)
    hint = ""
    if close:
        best = words[close[0]]
        hint = f" (did you mean '{best.name}', {best.title}?)"
    names = ", ".join(p.name for p in platforms) or "(none)"
    return f"unknown platform {name!r}{hint}; known: {names}"


def _blame(exc: ValueError, source: str, prefix: str, applied: dict[str, str]) -> list[Problem]:
    if not isinstance(exc, ValidationError):
        return [Problem(source, prefix.rstrip(".") or "(file)", str(exc))]
    out = []
    for p in problems_of(exc, source):
        key = prefix + p.key if p.key != "(file)" else p.key
        top = key.split("[")[0]
        parts = top.split(".")
        var = applied.get(".".join(parts[:2])) or applied.get(parts[0])
        reason = f"{p.reason} (set by ${var})" if var else p.reason
        out.append(Problem(p.file, key, reason))
    return out
