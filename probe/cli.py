"""The ``blockprobe`` console command: one typer app, with each package's sub-commands added."""

from __future__ import annotations

import typer

from censornet.cli import app as lab_app

app = typer.Typer(
    name="blockprobe",
    help="Detect when a platform is blocked, throttled or down, with signed evidence.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(lab_app, name="lab")


def main() -> None:
    """Entry point of the console script."""
    app()
