"""Evidence a journalist can check: readable pages, and packs verified with no collector."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from blockprobe.cli import build_app
from collectors.config import CollectorSettings
from probe.evidence.bundle import read_envelope
from probe.evidence.signing import envelope_payload
from probe.model.bundle import Bundle
from reports.app import create_app
from reports.cli import app as report_cli
from tests.reports.factories import load_scenario

RANGE = {"since": "2024-02-17T12:00:00Z", "until": "2024-02-17T22:00:00Z"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "collector"
    app = create_app(CollectorSettings(data_dir=directory))
    load_scenario(app.state.store)
    app.state.store.engine.dispose()
    return directory


@pytest.fixture
async def client(data: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CollectorSettings(data_dir=data))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as c:
        yield c
    app.state.store.engine.dispose()


@pytest.mark.anyio
async def test_incident_bundles_hold_its_kind_and_method(client: httpx.AsyncClient) -> None:
    found = (await client.get("/api/v1/reports/incidents", params=RANGE)).json()["result"]
    assert found
    for incident in found:
        assert incident["sample_digests"], incident
        for digest in incident["sample_digests"]:
            raw = (await client.get(f"/api/v1/bundles/{digest}")).content
            bundle = Bundle.model_validate_json(envelope_payload(read_envelope(raw)))
            assert any(
                m.verdict.kind == incident["kind"]
                and m.verdict.method == incident["method"]
                and m.vantage.asn == incident["asn"]
                for m in bundle.measurements
            ), (incident["id"], digest)


@pytest.mark.anyio
async def test_readable_pages(client: httpx.AsyncClient) -> None:
    found = (await client.get("/api/v1/reports/incidents", params=RANGE)).json()["result"]
    block = next(i for i in found if i["asn"] == 64500)
    digest = block["sample_digests"][0]
    page = await client.get(f"/bundles/{digest}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "valid Ed25519 signature by enrolled key" in text
    assert "the proof verifies" in text and "blockprobe.collector/log" in text
    assert f"href='/bundles/{digest}/0'" in text and "data-method='tls.reset'" in text
    assert f"href='/api/v1/bundles/{digest}'" in text  # the raw envelope, to check oneself
    one = await client.get(f"/bundles/{digest}/0")
    assert one.status_code == 200
    assert "tls.reset seen" in one.text  # the classifier's evidence line
    assert "Controls" in one.text and "the proof verifies" in one.text
    key = (await client.get(f"/api/v1/probes/{'0' * 63}1")).status_code
    assert key == 404
    assert (await client.get(f"/bundles/{digest}/99")).status_code == 404
    written = await client.get(f"/bundles/{digest}", params={"links": "files"})
    assert f"href='../bundles/{digest}/0.html'" in written.text


def test_pack_verifies_offline(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(
        report_cli,
        ["incidents", "--data-dir", str(data), "--since", RANGE["since"][:-1], "--until"]
        + [RANGE["until"][:-1], "--format", "json", "--asn", "64500"],
    )
    assert listed.exit_code == 0, listed.output
    incident = json.loads(listed.stdout)["result"][0]
    pack = tmp_path / "pack"
    out = runner.invoke(
        report_cli, ["evidence", incident["id"], "--data-dir", str(data), "--output", str(pack)]
    )
    assert out.exit_code == 0, out.output
    shutil.rmtree(data)  # no collector, no database: only the pack
    names = {p.name for p in (pack / "bundles").glob("*.json")}
    assert names == {f"{d}.json" for d in incident["sample_digests"]}
    assert len(list((pack / "keys").glob("*.json"))) == 2  # both probes of the network
    readme = (pack / "README.md").read_text()
    assert "blockprobe verify pack" in readme and incident["id"] in readme
    verify = build_app("verify")
    good = runner.invoke(verify, ["verify", str(pack)])
    assert good.exit_code == 0, good.output
    assert "evidence pack verified" in good.output
    assert good.output.count("the proof verifies") == len(incident["sample_digests"])
    assert "measurement(s) blocked (tls.reset)" in good.output
    log_key = json.loads((pack / "checkpoint.json").read_text())["public_key"]
    assert runner.invoke(verify, ["verify", str(pack), "--log-key", log_key]).exit_code == 0
    other = "A" * 43 + "="
    wrong_key = runner.invoke(verify, ["verify", str(pack), "--log-key", other])
    assert wrong_key.exit_code == 1 and "other than the one given" in wrong_key.output
    # A proof swapped for another bundle's does not verify.
    first, second = sorted((pack / "proofs").glob("*.json"))[:2]
    first.write_text(second.read_text())
    bad = runner.invoke(verify, ["verify", str(pack)])
    assert bad.exit_code == 1 and "FAIL" in bad.output


def test_pack_with_a_forged_bundle_fails(data: Path, tmp_path: Path) -> None:
    app = create_app(CollectorSettings(data_dir=data))
    with app.state.store.engine.connect() as conn:
        from reports.incidents import incidents
        from reports.model import ReportQuery

        found = incidents(conn, ReportQuery.model_validate({**RANGE, "asn": 64501}))
    app.state.store.engine.dispose()
    pack = tmp_path / "pack"
    out = CliRunner().invoke(
        report_cli, ["evidence", found[0].id, "--data-dir", str(data), "--output", str(pack)]
    )
    assert out.exit_code == 0, out.output
    path = next((pack / "bundles").glob("*.json"))
    envelope = json.loads(path.read_text())
    payload = json.loads(envelope_payload(read_envelope(path.read_bytes())))
    payload["measurements"][0]["verdict"]["evidence"] = ["edited after signing"]
    import base64

    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.write_text(json.dumps(envelope))
    bad = CliRunner().invoke(build_app("verify"), ["verify", str(pack)])
    assert bad.exit_code == 1 and "FAIL" in bad.output
