"""Probe commands for bundles: ``upload`` (drain the outbox now), ``verify``, ``enroll``.

``upload`` and ``enroll`` read the same configuration file as the daemon (``--config``, else the
one ``probe.daemon.settings.choose_config`` picks) for the collector, the enrolment token and the
state directory, so that they act on the daemon's outbox and keys; options override it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError

from probe.configfile import ConfigError
from probe.daemon.settings import LoadedConfig, load_chosen
from probe.evidence.bundle import open_sealed, read_envelope
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.evidence.signing import SignatureError, b64decode, load_public_key
from probe.evidence.upload import EnrollmentError, Uploader, enroll
from translog import merkle
from translog.checkpoint import verify_checkpoint

app = typer.Typer(help="Signed bundles: upload, verify, enrol.", add_completion=False)

EXIT_CONFIG = 2

StateDir = Annotated[
    Path | None,
    typer.Option(
        help="Probe state directory (keys, outbox); default: the daemon's, from the config."
    ),
]
Collector = Annotated[
    str | None,
    typer.Option(
        envvar="BLOCKPROBE_COLLECTOR",
        help="Collector base URL; default: [daemon] collector_url of the config.",
    ),
]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The probe config file; default: the one the daemon uses."),
]


def _config(command: str, config: Path | None) -> LoadedConfig:
    try:
        return load_chosen(config)
    except ConfigError as exc:
        typer.echo(f"blockprobe {command}: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _collector(command: str, collector: str | None, loaded: LoadedConfig) -> str:
    url = collector or loaded.daemon.collector_url
    if url is None:
        typer.echo(
            f"blockprobe {command}: no collector: pass --collector URL or set [daemon]"
            f" collector_url in {loaded.path or 'a configuration file'}",
            err=True,
        )
        raise typer.Exit(EXIT_CONFIG)
    return str(url)


@app.command()
def upload(collector: Collector = None, state_dir: StateDir = None, config: Config = None) -> None:
    """Upload every due bundle in the outbox now (to the configured collector by default)."""
    loaded = _config("upload", config)
    url = _collector("upload", collector, loaded)
    with Outbox(loaded.state_dir(state_dir)[0] / OUTBOX_FILE) as outbox:
        report = asyncio.run(Uploader(outbox, url).drain())
        stats = outbox.stats()
    typer.echo(
        f"sent {report.sent}, already stored {report.already}, refused {report.dead},"
        f" deferred {report.deferred}; pending {stats.pending}, dead letters {stats.dead},"
        f" dropped (outbox full) {stats.dropped}"
    )
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    if report.deferred:
        raise typer.Exit(1)


@app.command()
def verify(
    bundle: Annotated[
        Path, typer.Argument(help="A bundle envelope (JSON file), or an evidence pack directory.")
    ],
    collector: Annotated[
        str | None, typer.Option(help="Also check the bundle is in this collector's log.")
    ] = None,
    log_key: Annotated[
        str | None, typer.Option(help="Expected collector log public key (base64).")
    ] = None,
) -> None:
    """Check a bundle's signature, and with --collector its inclusion in the log.

    Given an evidence pack's directory (``blockprobe report evidence``), check the whole pack
    offline: the log checkpoint's signature, every bundle's signature under its enrolled key,
    their inclusion proofs, and that they hold measurements of the incident.
    """
    if bundle.is_dir():
        from probe.evidence.pack import verify_pack

        report = verify_pack(bundle, log_key)
        for line in report.lines:
            typer.echo(line)
        if not report.ok:
            typer.echo(f"NOT VERIFIED: {report.failures} check(s) failed", err=True)
            raise typer.Exit(1)
        typer.echo("evidence pack verified")
        return
    try:
        digest, parsed = open_sealed(read_envelope(bundle.read_bytes()))
    except (ValidationError, SignatureError, OSError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    m = parsed.manifest
    typer.echo(f"signature ok: digest {digest}")
    typer.echo(f"  key {m.key_id}, {m.country}/AS{m.asn}, {m.measurement_count} measurements")
    if collector is None:
        return
    try:
        index, size = asyncio.run(_check_inclusion(collector, digest, log_key))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        typer.echo(f"NOT VERIFIED in the log: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"in the log: leaf {index} of a signed checkpoint of size {size}")


async def _check_inclusion(collector: str, digest: str, log_key: str | None) -> tuple[int, int]:
    base = collector.rstrip("/")
    async with httpx.AsyncClient(timeout=30.0) as client:
        cp = (await client.get(f"{base}/api/v1/log/checkpoint")).raise_for_status().json()
        if log_key is not None and log_key != cp["public_key"]:
            raise ValueError("the collector's log key is not the expected one")
        key = load_public_key(b64decode(cp["public_key"]))
        checkpoint = verify_checkpoint(cp["note"], key, cp["origin"])
        response = await client.get(
            f"{base}/api/v1/log/proof/inclusion",
            params={"digest": digest, "size": checkpoint.size},
        )
        proof = response.raise_for_status().json()
    leaf = merkle.leaf_hash(bytes.fromhex(digest))
    path = [bytes.fromhex(h) for h in proof["proof"]]
    index = int(proof["leaf_index"])
    if not merkle.verify_inclusion(leaf, index, checkpoint.size, path, checkpoint.root):
        raise ValueError("the inclusion proof does not match the signed checkpoint")
    return index, checkpoint.size


@app.command("enroll")
def enroll_command(
    collector: Collector = None,
    token: Annotated[
        str | None,
        typer.Option(help="Enrolment token, if required; default: [daemon] enroll_token."),
    ] = None,
    asn: Annotated[int | None, typer.Option(help="Network whose key to enrol.")] = None,
    country: Annotated[
        str | None, typer.Option(help="Country of that network (ISO 3166 alpha-2, e.g. PK).")
    ] = None,
    state_dir: StateDir = None,
    config: Config = None,
) -> None:
    """Enrol this probe's key for a network with the collector (the key is created if needed).

    The key signs the collector's challenge and is bound to that network (country and ASN): it
    signs bundles for that network only.
    """
    if country is not None and not (len(country) == 2 and country.isalpha() and country.isupper()):
        raise typer.BadParameter("an ISO 3166 alpha-2 code such as PK", param_hint="--country")
    loaded = _config("enroll", config)
    url = _collector("enroll", collector, loaded)
    secret = loaded.daemon.enroll_token
    token = token or (secret.get_secret_value() if secret else None)
    key = KeyStore(loaded.state_dir(state_dir)[0]).for_network(asn)
    try:
        kid = asyncio.run(enroll(url, key, token, country=country))
    except EnrollmentError as exc:
        typer.echo(f"enrolment refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"enrolled key {kid} for {country or 'ZZ'}/AS{asn}")
