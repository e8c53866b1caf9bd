"""``blockprobe lab ...``: bring the mock censor network up and down, apply scenarios, run in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Annotated

import typer

from censornet import topology
from censornet.lab import Lab
from censornet.netns import LabError
from censornet.origins import OriginSettings

app = typer.Typer(help="The mock censor network (network namespaces + netfilter + real servers).")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"blockprobe lab: {message}", err=True)
    return typer.Exit(code=2)


UNKNOWN_SNI_HELP = (
    "how the web origins answer a name they do not host: default-cert (nginx's default server, "
    "a certificate for another name), own-cert (the site's certificate for any name) or alert "
    "(unrecognized_name); one for all, or e.g. 'default-cert,twimg=alert' "
    "(default: $BLOCKPROBE_LAB_UNKNOWN_SNI, else default-cert)"
)


def _origin_settings(spec: str | None) -> OriginSettings | None:
    if spec is None:
        return None
    try:
        return OriginSettings.parse(spec)
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def up(
    unknown_sni: Annotated[str | None, typer.Option(help=UNKNOWN_SNI_HELP)] = None,
) -> None:
    """Build the lab (removing a leftover of a crashed run first) and start its servers."""
    started = time.monotonic()
    settings = _origin_settings(unknown_sni)
    try:
        lab = Lab.up(origins=settings)
    except (LabError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"lab {lab.prefix!r} up in {time.monotonic() - started:.2f} s ({lab.mode} mode); "
        f"state in {lab.state_dir}",
        err=True,
    )


@app.command()
def down() -> None:
    """Stop the lab's servers and delete its namespaces."""
    try:
        lab = Lab.locate()
    except LabError:
        # Nothing recorded, or a broken record: still remove leftovers by exact name.
        from censornet.lab import _teardown, state_root
        from censornet.netns import choose_mode

        prefix = topology.lab_prefix()
        _teardown(prefix, state_root() / prefix, choose_mode())
        typer.echo(f"lab {prefix!r} is down", err=True)
        return
    lab.down()
    typer.echo(f"lab {lab.prefix!r} is down", err=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Say whether the lab is up, which servers run and which scenario is applied per ISP."""
    try:
        lab = Lab.locate()
    except LabError as exc:
        raise _fail(str(exc)) from None
    info = lab.status()
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    typer.echo(f"lab {info['prefix']} ({info['mode']} mode), state in {info['state_dir']}")
    servers = info["servers"]
    assert isinstance(servers, dict)
    for name, alive in servers.items():
        typer.echo(f"  server {name:6} {'running' if alive else 'STOPPED'}")
    scenarios = info["scenario"]
    assert isinstance(scenarios, dict)
    for isp, scenario in scenarios.items():
        typer.echo(f"  {isp}: scenario {scenario}")
    typer.echo(f"  origins: unknown SNI answered with {json.dumps(info['origins'])}")


@app.command()
def origins(
    unknown_sni: Annotated[str, typer.Option(help=UNKNOWN_SNI_HELP)],
) -> None:
    """Switch how the running lab's web origins answer names they do not host."""
    settings = _origin_settings(unknown_sni)
    assert settings is not None
    try:
        lab = Lab.locate()
        started = time.monotonic()
        lab.set_origins(settings)
    except LabError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"origins answer unknown names with {unknown_sni} "
        f"(nginx reloaded in {time.monotonic() - started:.2f} s)",
        err=True,
    )


@app.command("list")
def list_scenarios() -> None:
    """List the scenario catalogue: id, expected result for X, and what it models."""
    from censornet.catalogue import load_catalogue

    for scenario in load_catalogue():
        typer.echo(f"{scenario.id:28} {scenario.title}")


@app.command()
def scenario(
    scenario_id: Annotated[str, typer.Argument(help="a scenario id from `blockprobe lab list`")],
    isp: Annotated[str | None, typer.Option(help="apply to this ISP only (default: all)")] = None,
) -> None:
    """Apply a scenario (rules and connection tracking are flushed first)."""
    try:
        lab = Lab.locate()
        from censornet.scenario import apply_scenario

        started = time.monotonic()
        apply_scenario(lab, scenario_id, isp=isp)
    except (LabError, KeyError, ValueError) as exc:
        raise _fail(str(exc).strip("'\"")) from None
    typer.echo(
        f"scenario {scenario_id} applied to {isp or 'all ISPs'} "
        f"in {time.monotonic() - started:.2f} s",
        err=True,
    )


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    ctx: typer.Context,
    vantage: Annotated[str, typer.Option(help="vantage point or lab role")] = "v1a",
) -> None:
    """Run a command at a vantage point: ``blockprobe lab exec --vantage v1a -- CMD ...``."""
    argv = list(ctx.args)
    if not argv:
        raise _fail("give a command after --, e.g. `blockprobe lab exec -- ip addr`")
    try:
        lab = Lab.locate()
        command = lab.command(vantage, argv)
    except LabError as exc:
        raise _fail(str(exc)) from None
    env = dict(os.environ, BLOCKPROBE_CA_FILE=str(lab.ca_file))
    code = subprocess.call(command, env=env)
    sys.exit(code)


@app.command()
def env(
    vantage: Annotated[str, typer.Option(help="vantage point")] = "v1a",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print what a probe needs in the lab: resolvers, CA, helper, endpoints (stable names)."""
    from censornet.check.env import lab_env

    try:
        lab = Lab.locate()
        facts = lab_env(lab, vantage)
    except (LabError, KeyError) as exc:
        raise _fail(str(exc).strip("'\"")) from None
    if as_json:
        typer.echo(json.dumps(facts, indent=1))
    else:
        for key, value in facts.items():
            typer.echo(f"{key}={value}")


@app.command()
def check(
    only: Annotated[
        list[str] | None,
        typer.Option(help="scenario id(s) to run, repeatable or comma-separated (default: all)"),
    ] = None,
    isp: Annotated[str, typer.Option(help="the ISP scenarios are applied to")] = "isp1",
    vantage: Annotated[
        str | None, typer.Option(help="vantage point on that ISP (default: its first)")
    ] = None,
    shuffle: Annotated[
        int | None, typer.Option(help="run in a random order from this seed", metavar="SEED")
    ] = None,
    probe_cmd: Annotated[
        str | None,
        typer.Option(help="shell command printing the verdict contract (default: blockprobe run)"),
    ] = None,
    catalogue: Annotated[
        str | None, typer.Option(help="a scenario catalogue TOML file (validated first)")
    ] = None,
    report: Annotated[str | None, typer.Option(help="write a JSON report here")] = None,
    junit: Annotated[str | None, typer.Option(help="write JUnit XML here")] = None,
    timeout: Annotated[float, typer.Option(help="seconds one probe run may take")] = 180.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and list the scenarios, run nothing")
    ] = False,
) -> None:
    """Score a probe against every scenario's expected verdicts; exit 0 only if all are right."""
    from censornet.check.cli import run_check_command

    code = run_check_command(
        only=[i.strip() for item in only or () for i in item.split(",") if i.strip()],
        isp=isp,
        vantage=vantage,
        seed=shuffle,
        probe_cmd=probe_cmd,
        catalogue_file=catalogue,
        report_file=report,
        junit_file=junit,
        timeout=timeout,
        dry_run=dry_run,
    )
    raise typer.Exit(code)
