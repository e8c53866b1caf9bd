"""The bundle commands: verify offline, and enrol / upload / verify against a live collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from probe.commands.bundles import app
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.evidence.signing import b64decode, b64encode
from tests.collectors.factories import make_key, make_sealed
from tests.collectors.processes import CollectorProcess

runner = CliRunner()


def test_verify_offline_accepts_good_and_refuses_tampered(tmp_path: Path) -> None:
    """A sealed bundle verifies; one flipped payload bit makes the command fail."""
    sealed = make_sealed(make_key(), 2)
    good = tmp_path / "good.json"
    good.write_bytes(sealed.to_bytes())
    result = runner.invoke(app, ["verify", str(good)])
    assert 0 == result.exit_code, result.output
    assert sealed.digest in result.output

    doc = json.loads(sealed.to_bytes())
    payload = bytearray(b64decode(doc["payload"]))
    payload[-3] ^= 1
    doc["payload"] = b64encode(bytes(payload))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert 1 == runner.invoke(app, ["verify", str(bad)]).exit_code


@pytest.mark.slow
def test_enroll_upload_and_verify_inclusion(tmp_path: Path) -> None:
    """enroll, then upload from the outbox, then verify inclusion in the collector's log."""
    collector = CollectorProcess(tmp_path / "collector", None, "--enroll-token", "t0k")
    try:
        collector.wait_ready()
        state = tmp_path / "state"
        argv = ["enroll", "--collector", collector.url, "--asn", "64500", "--country", "PK"]
        r = runner.invoke(app, [*argv, "--token", "t0k", "--state-dir", str(state)])
        assert 0 == r.exit_code, r.output
        key = KeyStore(state).for_network(64500)
        assert key.key_id in r.output
        sealed = [make_sealed(key, 1, start=i) for i in range(3)]
        with Outbox(state / OUTBOX_FILE) as box:
            for s in sealed[:2]:
                box.put(s.digest, s.to_bytes())
        config = tmp_path / "probe.toml"  # upload takes the collector and state from the config
        config.write_text(f'[daemon]\ncollector_url = "{collector.url}"\nstate_dir = "state"\n')
        r = runner.invoke(
            app, ["upload", "--config", str(config)], env={"BLOCKPROBE_COLLECTOR": ""}
        )
        assert 0 == r.exit_code, r.output
        assert "sent 2" in r.output
        for i, s in enumerate(sealed):
            path = tmp_path / f"{i}.json"
            path.write_bytes(s.to_bytes())
            r = runner.invoke(app, ["verify", str(path), "--collector", collector.url])
            if i < 2:
                assert 0 == r.exit_code, r.output
                assert "in the log: leaf" in r.output
            else:
                assert 1 == r.exit_code  # signed, but never uploaded: not in the log
    finally:
        collector.stop()


def test_upload_without_a_collector_says_where_to_set_one(tmp_path: Path) -> None:
    """No --collector and none configured: a clear error naming the key and the file."""
    config = tmp_path / "probe.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    r = runner.invoke(app, ["upload", "--config", str(config)], env={"BLOCKPROBE_COLLECTOR": ""})
    assert 2 == r.exit_code
    assert "collector_url" in r.output and str(config) in r.output
