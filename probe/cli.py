"""The ``blockprobe`` console command: one typer app, with each package's sub-commands added."""

from __future__ import annotations

import typer

from censornet.cli import app as lab_app
from collectors.cli import app as collector_app
from probe import bundle_cli
from probe.daemon_cli import register as register_daemon
from probe.helper.allowlist import load_helper
from probe.helper.cli import make_cli
from probe.run_cli import register as register_run
from reports.cli import app as report_app

app = typer.Typer(
    name="blockprobe",
    help="Detect when a platform is blocked, throttled or down, with signed evidence.",
    no_args_is_help=True,
    add_completion=False,
)
register_run(app)
register_daemon(app)
app.command("upload")(bundle_cli.upload)
app.command("verify")(bundle_cli.verify)
app.command("enroll")(bundle_cli.enroll_command)
app.add_typer(make_cli(load_helper), name="helper")
app.add_typer(collector_app, name="collector")
app.add_typer(report_app, name="report")
app.add_typer(lab_app, name="lab")


def main() -> None:
    """Entry point of the console script."""
    app()
