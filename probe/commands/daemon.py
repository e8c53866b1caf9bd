"""``blockprobe daemon``, ``blockprobe status`` and ``blockprobe config check``.

``daemon`` finds the configuration (``probe.daemon.settings.choose_config``: ``--config``,
``$BLOCKPROBE_CONFIG``, then the user's or the system's file, never both), asks for informed
consent once, sets up logging (text or JSON lines on stderr, optionally a rotated file in the
state directory), logs which file and state directory it uses and why, and runs
``probe.daemon.service``. Exit status: 0 after a clean stop, 2 for a refused configuration, 3
without consent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from probe.configfile import ConfigError
from probe.daemon import consent, scheduler, status
from probe.daemon.settings import LoadedConfig, choose_config, load_chosen, load_files
from probe.platforms import UnknownPlatformError

logger = logging.getLogger("probe.daemon.service")

EXIT_CONFIG = 2
EXIT_CONSENT = 3

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The probe config file (TOML); default $BLOCKPROBE_CONFIG, else"
        " $XDG_CONFIG_HOME/blockprobe/probe.toml or /etc/blockprobe/probe.toml (not both).",
    ),
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="State directory; default [daemon] state_dir or the XDG/system one."
    ),
]


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(loaded: LoadedConfig, state_dir: Path) -> None:
    """Log to stderr (and to ``<state>/logs/daemon.log`` when configured)."""
    d = loaded.daemon
    formatter: logging.Formatter = (
        JsonLines()
        if d.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if d.log_file:
        logs = state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                logs / "daemon.log", maxBytes=1024 * 1024, backupCount=3, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(d.log_level.upper())
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


def ask(question: str) -> bool:
    """Ask on the terminal until the answer is true/false or yes/no (``consent.parse_answer``)."""

    def answer(text: str) -> bool:
        try:
            return consent.parse_answer(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    said: bool = typer.prompt(question, value_proc=answer)
    return said


def _load(config: Path | None) -> LoadedConfig:
    return load_chosen(config)


def _state_dir(loaded: LoadedConfig, state_dir: Path | None) -> Path:
    return loaded.state_dir(state_dir)[0]


def daemon_command(
    config: ConfigOption = None,
    state_dir: StateOption = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            envvar="BLOCKPROBE_ACCEPT_CONSENT",
            help="Record informed consent without questions (read --show-consent first).",
        ),
    ] = False,
    show_consent: Annotated[
        bool, typer.Option("--show-consent", help="Print what consent covers, and exit.")
    ] = False,
) -> None:
    """Run the probe in the background: scheduled checks, signed results, uploads."""
    if show_consent:
        typer.echo(consent.TEXT)
        typer.echo(consent.HOW_TO_CONSENT)
        return
    try:
        loaded = _load(config)
        loaded.probe.chosen_platforms()
    except (ConfigError, UnknownPlatformError) as exc:
        typer.echo(f"blockprobe daemon: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    where, where_why = loaded.state_dir(state_dir)
    how: consent.How | None = None
    if accept:
        how = "environment" if os.environ.get("BLOCKPROBE_ACCEPT_CONSENT") else "flag"
    try:
        consent.ensure(
            where,
            accept=how,
            interactive=sys.stdin.isatty() and sys.stdout.isatty(),
            echo=typer.echo,
            confirm=ask,
        )
    except consent.ConsentRequired as exc:
        typer.echo(f"blockprobe daemon: {exc}", err=True)
        raise typer.Exit(EXIT_CONSENT) from None
    setup_logging(loaded, where)
    logger.info("configuration: %s (%s)", loaded.path or "built-in defaults", loaded.why)
    logger.info("state directory: %s (%s)", where, where_why)

    from probe.daemon.service import Daemon

    path = loaded.path

    def reload() -> LoadedConfig:
        return load_files(path)

    async def main() -> None:
        await Daemon(
            loaded,
            where,
            reload=reload if path is not None else None,
            relog=lambda new: setup_logging(new, where),
        ).serve()

    asyncio.run(main())


def status_command(
    config: ConfigOption = None,
    state_dir: StateOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not check that the collector is reachable.")
    ] = False,
) -> None:
    """Show the last and next run per platform, the outbox, data used, the collector."""
    try:
        loaded = _load(config)
    except ConfigError as exc:
        typer.echo(f"blockprobe status: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    where = _state_dir(loaded, state_dir)
    try:
        names = [p.name for p in loaded.probe.chosen_platforms()]
    except (ConfigError, UnknownPlatformError):
        names = []
    report = status.collect(where, loaded, platforms=names)
    url = report.collector.url
    if url and not offline:
        reachable = asyncio.run(status.check_collector(url))
        report = report.model_copy(
            update={
                "collector": report.collector.model_copy(
                    update={"reachable": reachable[0], "detail": reachable[1]}
                )
            }
        )
    if json_output:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        from rich.console import Console

        status.render_text(report, Console(highlight=False))


config_app = typer.Typer(
    help="Probe configuration files.", no_args_is_help=True, add_completion=False
)


@config_app.command("check")
def check_command(
    file: Annotated[
        Path | None,
        typer.Argument(help="The TOML file to check; default: the one the daemon would use."),
    ] = None,
) -> None:
    """Validate a config file (environment overrides applied); name every problem at once."""
    try:
        choice = choose_config(file)
        loaded = load_files(choice.path)
        platforms = loaded.probe.chosen_platforms()
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except UnknownPlatformError as exc:
        typer.echo(f"error: {file}: platforms: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    d = loaded.daemon
    if choice.path is None:
        typer.echo(f"no configuration file: {choice.why}")
    else:
        typer.echo(f"{choice.path}: ok ({choice.why})")
    typer.echo(f"  platforms: {', '.join(p.name for p in platforms)}")
    for p in platforms:
        when = d.when(p.name)
        typer.echo(f"    {p.name}: {scheduler.describe(when, d.jitter)}")
    typer.echo(f"  collector: {d.collector_url or 'none (results stay in the outbox)'}")
    typer.echo(
        f"  budget: {loaded.probe.budget.run_bytes} bytes per run, {d.daily_bytes} per day,"
        f" metered {'yes' if d.metered else 'no'}"
    )
    where, why = loaded.state_dir()
    typer.echo(f"  state directory: {where} ({why})")
    if loaded.overrides:
        typer.echo(f"  set from the environment: {', '.join(loaded.overrides)}")


def register(app: typer.Typer) -> None:
    """Add ``daemon``, ``status`` and ``config check`` to the ``blockprobe`` app."""
    app.command("daemon")(daemon_command)
    app.command("status")(status_command)
    app.add_typer(config_app, name="config")


def main() -> None:
    """Run these commands alone (``python -m probe.commands.daemon``), unregistered."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
