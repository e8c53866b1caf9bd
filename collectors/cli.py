"""``blockprobe collector ...``: run the collector service."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from probe.daemon.status import alive

app = typer.Typer(help="The collector service.", no_args_is_help=True, add_completion=False)


@app.callback()
def collector() -> None:
    """The collector service: receives signed bundles, keeps the transparency log."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    data_dir: Annotated[
        Path, typer.Option(help="Where the SQLite database and the log key live.")
    ] = Path("collector-data"),
    database: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default SQLite)."
        ),
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(envvar="BLOCKPROBE_COLLECTOR_ADMIN_TOKEN", help="Enables the admin API."),
    ] = None,
    enroll_policy: Annotated[
        str,
        typer.Option(
            help="'approval' (a token enrols, else an admin approves), 'token' (a token is"
            " required) or 'open' (any key that proves possession; labs only)."
        ),
    ] = "approval",
    enroll_token: Annotated[
        list[str] | None, typer.Option(help="An enrolment token (repeatable).")
    ] = None,
    rate_limit: Annotated[
        float, typer.Option(min=0.001, help="Bundles per minute per key (and the burst).")
    ] = 600.0,
    enroll_rate: Annotated[
        float, typer.Option(min=0.001, help="Enrolment requests per minute, all keys.")
    ] = 60.0,
    max_bundle_bytes: Annotated[int, typer.Option(min=1, help="Largest bundle accepted.")] = (
        8 * 1024 * 1024
    ),
    log_key_file: Annotated[
        Path | None,
        typer.Option(help="The log's signing key (default data-dir/log-key.pem); share it."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    served: Annotated[
        str, typer.Option("--app", hidden=True, help="The app factory uvicorn serves.")
    ] = "collectors.app:create_app",
) -> None:
    """Serve the collector API. Client addresses are never logged (access log off)."""
    if enroll_policy not in ("approval", "token", "open"):
        raise typer.BadParameter(
            "must be 'approval', 'token' or 'open'", param_hint="--enroll-policy"
        )
    # Workers sum their metrics in a fresh directory (prometheus_client's multiprocess mode), one
    # per serving process: two collectors on one data directory (one PostgreSQL log) must not
    # empty each other's.
    metrics_dir = data_dir / "metrics.d" / str(os.getpid())
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, mode=0o700)
    for old in metrics_dir.parent.iterdir():
        if old.name.isdigit() and not alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)  # a collector that is gone
    # Workers build the app from the environment (uvicorn's factory), so settings go there.
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "BLOCKPROBE_COLLECTOR_ENROLL_PER_MINUTE": str(enroll_rate),
        "BLOCKPROBE_COLLECTOR_DATA_DIR": str(data_dir),
        "BLOCKPROBE_COLLECTOR_ENROLL_POLICY": enroll_policy,
        "BLOCKPROBE_COLLECTOR_ENROLL_TOKENS": json.dumps(enroll_token or []),
        "BLOCKPROBE_COLLECTOR_RATE_LIMIT_PER_MINUTE": str(rate_limit),
        "BLOCKPROBE_COLLECTOR_RATE_LIMIT_BURST": str(max(1, int(rate_limit))),
        "BLOCKPROBE_COLLECTOR_MAX_BUNDLE_BYTES": str(max_bundle_bytes),
    }
    if database:
        env["BLOCKPROBE_COLLECTOR_DATABASE_URL"] = database
    if log_key_file:
        env["BLOCKPROBE_COLLECTOR_LOG_KEY_FILE"] = str(log_key_file)
    if admin_token:
        env["BLOCKPROBE_COLLECTOR_ADMIN_TOKEN"] = admin_token
    os.environ.update(env)
    uvicorn.run(
        served,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_level="info",
    )
