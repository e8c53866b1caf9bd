"""``blockprobe run``: measure the chosen platforms once and print the verdicts.

The human form is one table per platform on stdout, narrow enough for 80 columns (endpoint,
verdict, method, throughput); ``--verbose`` adds each endpoint's evidence below its table.
``--json`` prints only the run document of the verdict contract (docs/verdicts.md) on stdout.
Progress always goes to stderr. Exit status 0 when the run completed (whatever the verdicts), 2
for a bad configuration or an unknown platform.

``--upload`` then seals the measurements into bundles, one per network, in the outbox of the
state directory, enrols the key with the collector if needed and drains the outbox
(``probe.daemon.submit``), printing one summary line on stderr. Bundles the collector cannot take
now stay queued (exit status still 0): ``blockprobe upload`` or the daemon sends them later.
``--asn``, ``--country`` and ``--network`` label the vantage point as the config's
``[vantage]`` table does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from probe.config import ProbeConfig, VantageConfig, load_config
from probe.configfile import ConfigError, problems_of
from probe.daemon.settings import DaemonConfig
from probe.daemon.state import choose_state_dir
from probe.daemon.submit import submit
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
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print the evidence behind each verdict."
    ),
    upload: bool = typer.Option(
        False,
        "--upload",
        help="Seal the measurements into signed bundles (one per network) and upload them; "
        "what cannot be sent now waits in the outbox.",
    ),
    collector: str | None = typer.Option(
        None,
        "--collector",
        envvar="BLOCKPROBE_COLLECTOR",
        help="Collector base URL for --upload; default: the config's daemon.collector_url.",
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        envvar="BLOCKPROBE_STATE_DIR",
        help="Probe state directory (keys, outbox) for --upload; default: the daemon's.",
    ),
    enroll_token: str | None = typer.Option(
        None,
        "--enroll-token",
        envvar="BLOCKPROBE_ENROLL_TOKEN",
        help="Enrolment token, for a collector that requires one.",
    ),
    asn: int | None = typer.Option(
        None, "--asn", min=0, max=4294967295, help="Label the vantage with this network (ASN)."
    ),
    country: str | None = typer.Option(
        None, "--country", help="Label the vantage with this country (two capital letters)."
    ),
    network: str | None = typer.Option(
        None, "--network", help="Label the vantage with this network name (never an address)."
    ),
) -> None:
    """Check whether platforms are reachable, blocked, throttled or down from here."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        probe_config = _configure(config, ca_file)
        probe_config = _labelled(probe_config, asn=asn, country=country, network=network)
        chosen = probe_config.chosen_platforms(platform or [])
        probe_config.to_settings()  # refuse a bad system resolver file before measuring
        target = (
            _upload_target(probe_config, collector, state_dir, enroll_token) if upload else None
        )
    except (ConfigError, UnknownPlatformError) as exc:
        typer.echo(f"blockprobe run: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None

    def progress(message: str) -> None:
        err.print(message, style="dim", markup=False)

    document, measurements = asyncio.run(run_check(probe_config, chosen, progress=progress))
    if json_output:
        sys.stdout.write(document.model_dump_json() + "\n")
        sys.stdout.flush()
    else:
        render(document, chosen, Console(highlight=False), evidence=verbose)
    if target is not None:
        report = asyncio.run(
            submit(
                target.state_dir,
                measurements,
                target.collector,
                country=probe_config.vantage.country,
                enroll_token=target.token,
            )
        )
        err.print(report.summary(), markup=False)


@dataclass(frozen=True)
class UploadTarget:
    """Where ``--upload`` keeps its bundles and sends them."""

    collector: str
    state_dir: Path
    token: str | None


def _labelled(
    config: ProbeConfig, *, asn: int | None, country: str | None, network: str | None
) -> ProbeConfig:
    """``config`` with the vantage labels given on the command line (validated like the file's)."""
    given = {"asn": asn, "country": country, "network": network}
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return config
    try:
        vantage = VantageConfig.model_validate(config.vantage.model_dump() | changes)
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ConfigError.single("(command line)", "vantage", problems) from None
    updated = config.model_copy(update={"vantage": vantage})
    updated._source = config.source
    return updated


STATE_DIR_VARIABLES = ("BLOCKPROBE_DAEMON_STATE_DIR", "BLOCKPROBE_STATE_DIR")  # as the daemon reads


def _upload_target(
    config: ProbeConfig, collector: str | None, state_dir: Path | None, token: str | None
) -> UploadTarget:
    """The collector, state directory and token for ``--upload``: options, then ``[daemon]``."""
    try:
        daemon = DaemonConfig.model_validate(config.daemon)
    except ValidationError as exc:
        raise ConfigError(
            [replace(p, key=f"daemon.{p.key}") for p in problems_of(exc, config.source)]
        ) from None
    url = collector or (str(daemon.collector_url) if daemon.collector_url else None)
    if not url:
        raise ConfigError.single(
            config.source,
            "daemon.collector_url",
            "--upload needs a collector: pass --collector URL or set [daemon] collector_url",
        )
    configured = daemon.state_dir
    if configured is not None and not configured.is_absolute() and config.source != "(defaults)":
        configured = Path(config.source).resolve().parent / configured.expanduser()
    variable = next((v for v in STATE_DIR_VARIABLES if os.environ.get(v)), None)
    if variable is not None:
        configured = Path(os.environ[variable])
    where, _ = choose_state_dir(state_dir, configured, set_by=variable, source=config.source)
    if token is None and daemon.enroll_token is not None:
        token = daemon.enroll_token.get_secret_value()
    return UploadTarget(url, where, token)


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


OFFLINE = "this network seems offline"  # outage.local: nothing works from here, not the platform


def _verdict_text(result: EndpointResult) -> str:
    style = _STYLES.get(result.verdict, "")
    return f"[{style}]{result.verdict}[/{style}]" if style else result.verdict


def summary_title(title: str, summary: EndpointResult) -> str:
    """``X (Twitter): blocked (tls.reset), partial``; an offline vantage says so in words."""
    if summary.method == "outage.local":
        style = _STYLES["outage"]
        return f"{title}: [{style}]{OFFLINE}[/{style}] (outage.local)"
    text = f"{title}: {_verdict_text(summary)}"
    if summary.method:
        text += f" ({summary.method})"
    if summary.partial:
        text += ", partial"
    return text


def method_text(row: EndpointResult) -> str:
    """The row's method, and its HTTP/3 result when that is not reachable (``; HTTP/3 blocked
    (quic.timeout)``): the endpoint's verdict is about HTTPS over TCP."""
    text = row.method or ""
    if row.http3 is not None and row.http3.kind != "reachable":
        how = f" ({row.http3.method})" if row.http3.method else ""
        text += ("; " if text else "") + f"HTTP/3 {row.http3.kind}{how}"
    return text


def render(
    document: RunDocument, platforms: list[Platform], console: Console, *, evidence: bool = False
) -> None:
    """One table per platform: its summary in the title, one row per endpoint.

    The table fits 80 columns (long URLs fold); ``evidence`` lists each endpoint's evidence
    under the table, one indented line each.
    """
    titles = {p.name: p.title for p in platforms}
    for name in dict.fromkeys(r.platform for r in document.results):
        rows = [r for r in document.results if r.platform == name]
        summary = next((r for r in rows if r.target is None), None)
        title = titles.get(name, name)
        if summary is not None:
            title = summary_title(title, summary)
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("endpoint", overflow="fold", ratio=3)
        table.add_column("verdict", no_wrap=True)
        table.add_column("method", overflow="fold", ratio=2)
        table.add_column("throughput", ratio=1)
        endpoints = [row for row in rows if row.target is not None]
        for row in endpoints:
            method = method_text(row) + family_note(row)
            table.add_row(row.target, _verdict_text(row), method, format_throughput(row.throughput))
        console.print(table)
        if evidence:
            for row in ([summary] if summary is not None else []) + endpoints:
                if row.evidence:
                    console.print(row.target or "summary", style="bold", markup=False)
                    for line in row.evidence:
                        console.print(f"  - {line}", markup=False)
                    for line in row.http3.evidence if row.http3 and row.target else ():
                        console.print(f"  - HTTP/3: {line}", markup=False)
        elif any(row.evidence for row in endpoints):
            console.print("(evidence: blockprobe run --verbose)", style="dim")
    for note in document.notes:
        console.print(note, style="dim", markup=False)


def family_note(row: EndpointResult) -> str:
    """`` (IPv4 only)`` when the verdict holds over one address family, the other reachable."""
    if not row.families:
        return ""
    reachable = [f for f, v in row.families.items() if v.kind == "reachable"]
    if len(reachable) != 1 or row.verdict == "reachable":
        return ""
    other = next(f for f in row.families if f not in reachable)
    return " (IPv4 only)" if other == "ipv4" else " (IPv6 only)"


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``blockprobe`` app."""
    app.command("run")(run_command)
