"""The ``blockprobe`` console command: one typer app, with each package's sub-commands added.

Each command group is imported only when it is the one asked for (all of them for ``--help``), so
``blockprobe daemon`` does not carry the collector, the reports and the lab in its memory, and
every command starts faster.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer


def _run(app: typer.Typer) -> None:
    from probe.commands.run import register

    register(app)


def _daemon(app: typer.Typer) -> None:
    from probe.commands.daemon import register

    register(app)


def _bundles(app: typer.Typer) -> None:
    from probe.commands import bundles as bundle_cli

    app.command("upload")(bundle_cli.upload)
    app.command("verify")(bundle_cli.verify)
    app.command("enroll")(bundle_cli.enroll_command)


def _helper(app: typer.Typer) -> None:
    from probe.helper.allowlist import load_helper
    from probe.helper.cli import make_cli

    app.add_typer(make_cli(load_helper), name="helper")


def _collector(app: typer.Typer) -> None:
    from collectors.cli import app as collector_app

    # The collector serves its routes with the reports' composed on top (reports.app).
    served = {"serve": {"served": "reports.app:create_app"}}
    app.add_typer(collector_app, name="collector", context_settings={"default_map": served})


def _report(app: typer.Typer) -> None:
    from reports.cli import app as report_app

    app.add_typer(report_app, name="report")


def _ooni(app: typer.Typer) -> None:
    from probe.ooni.cli import app as ooni_app

    app.add_typer(ooni_app, name="ooni")


def _lab(app: typer.Typer) -> None:
    from censornet.cli import app as lab_app

    app.add_typer(lab_app, name="lab")


# Command name -> the registrar that adds it (in the order --help lists them).
REGISTRARS: dict[str, Callable[[typer.Typer], None]] = {
    "run": _run,
    "daemon": _daemon,
    "status": _daemon,
    "config": _daemon,
    "upload": _bundles,
    "verify": _bundles,
    "enroll": _bundles,
    "helper": _helper,
    "collector": _collector,
    "report": _report,
    "ooni": _ooni,
    "lab": _lab,
}


OURS = {"blockprobe", "probe", "translog", "collectors", "reports", "censornet"}
EXTRAS = {"helper": "helper", "collector": "collector", "report": "reports", "lab": "lab"}


def _refusal(module: str, extra: str) -> Callable[[], None]:
    def refuse() -> None:
        typer.echo(f"this command needs {module!r}: pip install 'blockprobe[{extra}]'", err=True)
        raise typer.Exit(2)

    return refuse


def _missing(app: typer.Typer, registrar: Callable[[typer.Typer], None], module: str) -> None:
    """Stand-ins for a group whose extra is not installed: they say which one to install."""
    for name, chosen in REGISTRARS.items():
        if chosen is registrar:
            extra = EXTRAS.get(name, "dev")
            app.command(
                name,
                help=f"(needs the {extra} extra of blockprobe)",
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                add_help_option=False,
            )(_refusal(module, extra))


def build_app(command: str | None = None) -> typer.Typer:
    """The app with ``command``'s group registered, or every group when it is not a known one."""
    app = typer.Typer(
        name="blockprobe",
        help="Detect when a platform is blocked, throttled or down, with signed evidence.",
        no_args_is_help=True,
        add_completion=False,
    )

    @app.callback()
    def blockprobe() -> None:
        """Detect when a platform is blocked, throttled or down, with signed evidence."""

    chosen = [REGISTRARS[command]] if command in REGISTRARS else list(REGISTRARS.values())
    for registrar in dict.fromkeys(chosen):  # each group once, in order
        try:
            registrar(app)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] in OURS:
                raise
            _missing(app, registrar, exc.name)
    return app


def main() -> None:
    """Entry point of the console script."""
    build_app(sys.argv[1] if len(sys.argv) > 1 else None)()
