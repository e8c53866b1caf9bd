"""The daemon's settings (the ``[daemon]`` table of ``probe.toml``) and how the file is found.

``load_files`` reads one TOML file into the probe configuration (``ProbeConfig``) and the daemon
settings (``DaemonConfig``), after applying environment overrides: every key of the file can be
set by ``BLOCKPROBE_<KEY>`` (top level) or ``BLOCKPROBE_<SECTION>_<KEY>`` (a table), the value
written as a TOML value (``30``, ``true``, ``["x", "youtube"]``) or as a bare string. The file is
``$BLOCKPROBE_CONFIG``, else ``$XDG_CONFIG_HOME/blockprobe/probe.toml`` for a user, else
``/etc/blockprobe/probe.toml`` (a system service).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from probe.config import ProbeConfig
from probe.configfile import ConfigError, Problem, problems_of, read_toml
from probe.platforms import Url

SYSTEM_CONFIG = Path("/etc/blockprobe/probe.toml")
CONFIG_NAME = "probe.toml"
ENV_PREFIX = "BLOCKPROBE_"
MiB = 1024 * 1024


def _crontab(value: str) -> str:
    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is not a crontab expression (m h dom mon dow): {exc}"
        ) from None
    return value


Crontab = Annotated[str, AfterValidator(_crontab)]
Interval = Annotated[float, Field(ge=1.0, le=7 * 86400.0)]


class DaemonConfig(BaseModel):
    """How the daemon schedules, uploads, budgets and reports. Times in seconds, sizes in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: Interval = 1800.0  # each platform, unless ``schedule`` says otherwise
    jitter: float = Field(default=300.0, ge=0.0, le=86400.0)  # random delay added to each run
    schedule: dict[str, Interval | Crontab] = Field(default_factory=dict)  # platform -> when
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


def config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file to use, or None (built-in defaults) when there is none."""
    env = os.environ if env is None else env
    if env.get("BLOCKPROBE_CONFIG"):
        return Path(env["BLOCKPROBE_CONFIG"])
    candidates = []
    if env.get("CONFIGURATION_DIRECTORY"):  # systemd's ConfigurationDirectory=
        candidates.append(Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / CONFIG_NAME)
    if os.geteuid() != 0:
        home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        candidates.append(Path(home) / "blockprobe" / CONFIG_NAME)
    candidates.append(SYSTEM_CONFIG)
    return next((p for p in candidates if p.is_file()), None)


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _sections(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        out[name] = annotation if is_model else None  # type: ignore[assignment]
    return out


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Set every key some ``BLOCKPROBE_*`` variable overrides; returns {dotted key: variable}."""
    applied: dict[str, str] = {}
    sections = {k: v for k, v in _sections(ProbeConfig).items() if k != "daemon"}
    sections["daemon"] = DaemonConfig
    for name, section in sections.items():
        if section is None:
            var = f"{ENV_PREFIX}{name.upper()}"
            if var in env:
                data[name] = _env_value(env[var])
                applied[name] = var
            continue
        for key in section.model_fields:
            var = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
            if var in env:
                table = data.setdefault(name, {})
                if not isinstance(table, dict):
                    continue  # the file's own error is reported by validation
                table[key] = _env_value(env[var])
                applied[f"{name}.{key}"] = var
    if "daemon.state_dir" not in applied and env.get("BLOCKPROBE_STATE_DIR"):
        data.setdefault("daemon", {})["state_dir"] = env["BLOCKPROBE_STATE_DIR"]
        applied["daemon.state_dir"] = "BLOCKPROBE_STATE_DIR"
    return applied


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
    if problems:
        raise ConfigError(problems)
    assert probe is not None and daemon is not None
    probe._source = source
    if daemon.state_dir is not None and not daemon.state_dir.is_absolute():
        daemon = daemon.model_copy(update={"state_dir": base / daemon.state_dir.expanduser()})
    return LoadedConfig(probe, daemon, path, tuple(sorted(set(applied.values()))))


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
