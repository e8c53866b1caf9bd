"""``blockprobe run``: measure the chosen platforms once and print the verdicts.

The human form is one table per platform on stdout; ``--json`` prints only the run document of
the verdict contract (shared/spec/verdicts.md) on stdout. Progress always goes to stderr. Exit
status 0 when the run completed (whatever the verdicts), 2 for a bad configuration or an unknown
platform.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from probe.config import ProbeConfig, load_config
from probe.configfile import ConfigError
from probe.model import EndpointResult, RunDocument, ThroughputSummary
from probe.platforms import Platform, UnknownPlatformError
from probe.run import run_check

EXIT_USAGE = 2

_STYLES = {
    "reachable": "green",
    "blocked": "bold red",
    "throttled": "yellow",
    "outage": "magenta",
    "inconclusive": "cyan",
}


def run_command(
    platform: list[str] | None = typer.Option(
        None, "--platform", "-p", help="A platform to check (repeatable); default: the config's."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        envvar="BLOCKPROBE_CONFIG",
        help="The probe config file (TOML); default: built-in defaults for the Internet.",
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        envvar="BLOCKPROBE_CA_FILE",
        help="Trust these CA certificates (PEM) instead of the configured/system store.",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print only the run document (JSON) on stdout."
    ),
) -> None:
    """Check whether platforms are reachable, blocked, throttled or down from here."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        probe_config = _configure(config, ca_file)
        chosen = probe_config.chosen_platforms(platform or [])
        probe_config.to_settings()  # refuse a bad system resolver file before measuring
    except (ConfigError, UnknownPlatformError) as exc:
        typer.echo(f"blockprobe run: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None

    def progress(message: str) -> None:
        err.print(message, style="dim", markup=False)

    document, _ = asyncio.run(run_check(probe_config, chosen, progress=progress))
    if json_output:
        sys.stdout.write(document.model_dump_json() + "\n")
        sys.stdout.flush()
    else:
        render(document, chosen, Console(highlight=False))


def _configure(config: Path | None, ca_file: Path | None) -> ProbeConfig:
    probe_config = load_config(config)
    if ca_file is not None:
        probe_config = probe_config.with_ca_file(ca_file)
    return probe_config


def format_throughput(throughput: ThroughputSummary | None) -> str:
    """``1104 kbps (1.2% of control)``, or an empty string."""
    if throughput is None:
        return ""
    text = f"{throughput.kbps:.0f} kbps"
    if throughput.ratio is not None:
        text += f" ({throughput.ratio:.1%} of control)"
    elif throughput.control_kbps is not None:
        text += f" (control {throughput.control_kbps:.0f} kbps)"
    return text


def _verdict_text(result: EndpointResult) -> str:
    style = _STYLES.get(result.verdict, "")
    return f"[{style}]{result.verdict}[/{style}]" if style else result.verdict


def render(document: RunDocument, platforms: list[Platform], console: Console) -> None:
    """One table per platform: its summary in the title, one row per endpoint."""
    titles = {p.name: p.title for p in platforms}
    for name in dict.fromkeys(r.platform for r in document.results):
        rows = [r for r in document.results if r.platform == name]
        summary = next((r for r in rows if r.target is None), None)
        title = titles.get(name, name)
        if summary is not None:
            title += f": {_verdict_text(summary)}"
            if summary.method:
                title += f" ({summary.method})"
            if summary.partial:
                title += ", partial"
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("endpoint", no_wrap=True)
        table.add_column("verdict", no_wrap=True)
        table.add_column("method", no_wrap=True)
        table.add_column("evidence", overflow="fold")
        table.add_column("throughput")
        for row in rows:
            if row.target is None:
                continue
            table.add_row(
                row.target,
                _verdict_text(row),
                row.method or "",
                "\n".join(row.evidence),
                format_throughput(row.throughput),
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``blockprobe`` app."""
    app.command("run")(run_command)
