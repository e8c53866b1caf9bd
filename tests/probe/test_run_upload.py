"""``blockprobe run --upload``: measurements sealed per network, enrolled, uploaded or queued."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import typer
from fastapi import FastAPI
from typer.testing import CliRunner, Result

import probe.daemon.submit
from collectors.config import CollectorSettings
from probe.daemon.state import State
from probe.daemon.submit import SubmitReport, enroll_keys, seal_into_outbox, submit
from probe.evidence.bundle import open_sealed, read_envelope
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.evidence.upload import Uploader
from probe.model import Measurement, RunDocument
from reports.app import create_app
from tests.probe.test_run import Fakes, make_config, platform
from tests.probe.test_run_cli import app, fake_config, fakes  # noqa: F401 -- fixtures

COLLECTOR = "http://collector"


def collector_app(tmp_path: Path) -> FastAPI:
    return create_app(CollectorSettings(data_dir=tmp_path / "collector", enroll_policy="open"))


def asgi_client(collector: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=collector), base_url=COLLECTOR)


def unreachable_client() -> httpx.AsyncClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse))


async def fetch(collector: FastAPI, path: str) -> httpx.Response:
    async with asgi_client(collector) as client:
        return await client.get(path)


def measurements(asn: int) -> list[Measurement]:
    config = make_config(vantage={"country": "PK", "asn": asn, "network": f"lab-as{asn}"})
    _, found = Fakes(behaviour={"https://x.test/a": "reset"}).run(config, [platform("x", "a", "b")])
    return list(found)


def test_one_bundle_per_network_signed_with_that_networks_key(tmp_path):
    """Measurements from two ASNs become two bundles, each under its own per-network key."""
    both = measurements(64501) + measurements(64502)
    keys = KeyStore(tmp_path)
    with Outbox(tmp_path / OUTBOX_FILE) as outbox:
        queued = seal_into_outbox(outbox, keys, both, country="PK")
        assert [64501, 64502] == [q.asn for q in queued]
        assert 2 == outbox.stats().pending
        for item in outbox.due():
            digest, bundle = open_sealed(read_envelope(item.envelope))
            assert item.digest == digest
            asn = bundle.manifest.asn
            assert bundle.manifest.key_id == keys.for_network(asn).key_id
            assert {asn} == {m.vantage.asn for m in bundle.measurements}
            assert 2 == bundle.manifest.measurement_count


def test_submit_enrols_once_and_uploads(tmp_path):
    """The first submit enrols the key and stores the bundle; the next one only uploads."""
    collector = collector_app(tmp_path)
    state_dir = tmp_path / "state"
    taken = measurements(64501), measurements(64501)
    first, second, health = asyncio.run(twice(collector, state_dir, *taken))
    assert (1, 1, 0) == (first.enrolled, first.stored, first.pending)
    assert (0, 1, 0) == (second.enrolled, second.stored, second.pending)
    assert 2 == health["log_size"]
    with State(state_dir) as state:
        key = KeyStore(state_dir).for_network(64501)
        assert state.is_enrolled(key.key_id, COLLECTOR)
        contact = state.contact()
    assert contact is not None and contact.ok
    assert "1 bundle sealed (AS64501); 1 stored at the collector, 0 queued" in first.summary()


async def twice(
    collector: FastAPI, state_dir: Path, one: list[Measurement], two: list[Measurement]
) -> tuple[SubmitReport, SubmitReport, dict[str, object]]:
    async with asgi_client(collector) as client:
        first = await submit(state_dir, one, COLLECTOR, country="PK", client=client)
        second = await submit(state_dir, two, COLLECTOR, country="PK", client=client)
        health = (await client.get("/healthz")).json()
    return first, second, health


async def submit_unreachable(state_dir: Path, taken: list[Measurement]) -> SubmitReport:
    async with unreachable_client() as client:
        return await submit(state_dir, taken, COLLECTOR, country="PK", client=client)


async def enrol_and_drain(
    collector: FastAPI, state_dir: Path, outbox: Outbox
) -> tuple[int, list[str], int]:
    async with asgi_client(collector) as client:
        with State(state_dir) as state:
            enrolled, errors = await enroll_keys(
                KeyStore(state_dir), state, COLLECTOR, None, client, country="PK"
            )
        drained = await Uploader(outbox, COLLECTOR, client=client).drain()
    return enrolled, errors, drained.sent


def test_unreachable_collector_leaves_the_bundle_queued(tmp_path):
    """No collector: the bundle waits in the outbox and the summary says so; later it drains."""
    state_dir = tmp_path / "state"
    report = asyncio.run(submit_unreachable(state_dir, measurements(64501)))
    assert (0, 1, 1) == (report.stored, report.pending, len(report.sealed))
    assert "0 stored at the collector, 1 queued in the outbox" in report.summary()
    with Outbox(state_dir / OUTBOX_FILE) as outbox:
        assert [] == outbox.due(10)  # not due again until its backoff has passed
        item = outbox.get(report.sealed[0].digest)
        assert item is not None and item.attempts == 1
    # the collector is back: once the backoff has passed, the queued bundle goes up
    collector = collector_app(tmp_path)
    with Outbox(state_dir / OUTBOX_FILE, clock=lambda: 1e12) as late:
        assert (1, [], 1) == asyncio.run(enrol_and_drain(collector, state_dir, late))
        assert 0 == late.stats().pending


def run_cli(app_: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app_, ["run", *args], env={}, catch_exceptions=False)


def test_cli_upload_keeps_json_on_stdout_and_summarises_on_stderr(
    app,  # noqa: F811
    fakes,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """--upload --json: stdout is the run document only; the bundle reaches the collector."""
    collector = collector_app(tmp_path)
    monkeypatch.setattr(probe.daemon.submit, "make_client", lambda: asgi_client(collector))
    state_dir = tmp_path / "state"
    config = str(fake_config(tmp_path))
    args = ["--json", "-p", "x", "--config", config, "--upload", "--collector", COLLECTOR]
    args += ["--state-dir", str(state_dir), "--asn", "64501", "--country", "PK"]
    result = run_cli(app, *args)
    assert 0 == result.exit_code, result.stderr
    document = RunDocument.model_validate_json(result.stdout)
    assert (64501, "PK") == (document.probe.asn, document.probe.country)
    stderr = result.stderr
    assert "upload: 1 bundle sealed (AS64501); 1 stored at the collector, 0 queued" in stderr
    assert "upload:" not in result.stdout
    with State(state_dir) as state:
        run_contact = state.contact()
    assert run_contact is not None and run_contact.ok
    health = asyncio.run(fetch(collector, "/healthz")).json()
    assert 1 == health["log_size"]
    key = KeyStore(state_dir).for_network(64501)
    assert key.key_id  # the key of the labelled network was created and used


def test_cli_upload_without_collector_queues_and_exits_0(
    app,  # noqa: F811
    fakes,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """A collector that cannot be reached: the run still succeeds; the bundle is queued."""
    monkeypatch.setattr(probe.daemon.submit, "make_client", unreachable_client)
    state_dir = tmp_path / "state"
    result = run_cli(
        app,
        "-p", "x", "--config", str(fake_config(tmp_path)), "--upload",
        "--collector", COLLECTOR, "--state-dir", str(state_dir), "--asn", "64502",
    )  # fmt: skip
    assert 0 == result.exit_code, result.stderr
    assert "0 stored at the collector, 1 queued in the outbox" in result.stderr
    with Outbox(state_dir / OUTBOX_FILE) as outbox:
        assert 1 == outbox.stats().pending


def test_cli_upload_needs_a_collector(app, fakes, tmp_path, monkeypatch):  # noqa: F811
    """--upload with no --collector and no [daemon] collector_url: usage error, nothing measured."""
    monkeypatch.delenv("BLOCKPROBE_COLLECTOR", raising=False)
    result = run_cli(app, "-p", "x", "--config", str(fake_config(tmp_path)), "--upload")
    assert 2 == result.exit_code
    assert "collector_url" in result.stderr
    assert [] == fakes.measured


def test_cli_upload_uses_the_configs_daemon_table(app, fakes, tmp_path, monkeypatch):  # noqa: F811
    """[daemon] collector_url and state_dir (relative to the file) serve --upload."""
    collector = collector_app(tmp_path)
    monkeypatch.setattr(probe.daemon.submit, "make_client", lambda: asgi_client(collector))
    monkeypatch.delenv("BLOCKPROBE_STATE_DIR", raising=False)
    monkeypatch.delenv("BLOCKPROBE_COLLECTOR", raising=False)
    config = fake_config(tmp_path)
    config.write_text(
        config.read_text() + f'[daemon]\ncollector_url = "{COLLECTOR}"\nstate_dir = "st"\n'
    )
    result = run_cli(app, "-p", "x", "--config", str(config), "--upload", "--asn", "64501")
    assert 0 == result.exit_code, result.stderr
    assert "1 stored at the collector" in result.stderr
    assert (tmp_path / "st" / OUTBOX_FILE).exists()


def test_cli_labels_are_validated(app, fakes, tmp_path):  # noqa: F811
    """--country must be two capital letters, like the config's [vantage] country."""
    result = run_cli(app, "-p", "x", "--config", str(fake_config(tmp_path)), "--country", "pk")
    assert 2 == result.exit_code
    assert "country" in result.stderr
    assert [] == fakes.measured


def test_cli_labels_reach_the_run_document(app, fakes, tmp_path):  # noqa: F811
    """--asn/--country/--network relabel the vantage without --upload too."""
    args = ["--json", "-p", "x", "--config", str(fake_config(tmp_path))]
    result = run_cli(app, *args, "--asn", "64502", "--network", "lab-isp2")
    assert 0 == result.exit_code, result.stderr
    probe_info = json.loads(result.stdout)["probe"]
    assert (64502, "PK", "lab-isp2") == (
        probe_info["asn"],
        probe_info["country"],
        probe_info["network"],
    )
