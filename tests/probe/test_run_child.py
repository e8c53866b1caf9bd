"""A run in a child process: real measurements (of a closed local port), sealed in the child."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from probe.budget import DataBudget
from probe.config import ProbeConfig
from probe.daemon.run_child import run_in_child
from probe.evidence.bundle import open_sealed, read_envelope
from probe.platforms import Platform


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_run_in_a_child_comes_back_measured_and_sealed(tmp_path: Path) -> None:
    port = closed_port()
    platform = Platform.model_validate(
        {
            "name": "alpha",
            "title": "Alpha",
            "domains": ["127.0.0.1"],
            "endpoints": [{"url": f"http://127.0.0.1:{port}/"}],
        }
    )
    config = ProbeConfig.model_validate(
        {
            "canaries": [f"http://127.0.0.1:{port}/canary"],
            "control_resolvers": ["udp:127.0.0.1:9"],
            "vantage": {"country": "PK", "asn": 17557},
            "retries": 0,
        }
    )
    budget = DataBudget(100_000)
    document, measurements = asyncio.run(
        run_in_child(config, [platform], budget=budget, state_dir=tmp_path, country="PK")
    )
    assert [f"http://127.0.0.1:{port}/"] == [m.target for m in measurements]
    assert measurements[0].verdict.kind != "reachable"
    assert "alpha" == document.results[0].platform
    assert budget.reserved == 0 and budget.used == 0  # nothing came back from a closed port
    [(digest, envelope)] = measurements.bundles
    opened_digest, bundle = open_sealed(read_envelope(envelope))
    assert digest == opened_digest
    assert [m.measurement_id for m in measurements] == [
        m.measurement_id for m in bundle.measurements
    ]
    assert any(tmp_path.rglob("*.pem"))  # the key was made in the state directory
