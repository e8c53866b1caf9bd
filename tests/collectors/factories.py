"""Builders for measurements, keys and sealed bundles used by collector and probe tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from probe.evidence.bundle import SealedBundle, build, seal
from probe.evidence.keys import ProbeKey
from probe.model import (
    Failure,
    Measurement,
    Observations,
    TCPConnectObservation,
    TLSHandshakeObservation,
    VantageInfo,
    Verdict,
)

# Recent, on the hour: inside the collector's accepted window (collectors.bounds).
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
TOKEN = "probe-token"  # the enrolment token test collectors accept


def make_key(asn: int | None = 64500) -> ProbeKey:
    return ProbeKey(Ed25519PrivateKey.generate(), asn)


def make_measurement(i: int = 0, *, asn: int | None = 64500, country: str = "PK") -> Measurement:
    blocked = i % 2 == 0
    return Measurement(
        measurement_id=f"m-{asn}-{i}",
        platform="x",
        target="https://twitter.com/" if blocked else "https://abs.twimg.com/",
        domain="twitter.com" if blocked else "abs.twimg.com",
        # inside the collector's accepted window however many are made (T0 is 2 h back)
        started_at=T0 + timedelta(seconds=i % 3600),
        runtime=1.5,
        vantage=VantageInfo(country=country, asn=asn, network="isp1", software="blockprobe 0.1.0"),
        local=Observations(
            tcp=(TCPConnectObservation(ip="198.18.2.10", port=443, t0=0.0, t=0.01),),
            tls=(
                TLSHandshakeObservation(
                    ip="198.18.2.10",
                    sni="twitter.com",
                    failure=Failure.CONNECTION_RESET if blocked else None,
                    t0=0.01,
                    t=0.02,
                ),
            ),
        ),
        verdict=Verdict(
            kind="blocked" if blocked else "reachable",
            method="tls.reset" if blocked else None,
            confidence=0.95,
            evidence=("ClientHello with SNI twitter.com reset by peer",) if blocked else (),
        ),
    )


def make_sealed(key: ProbeKey, n: int = 3, *, start: int = 0) -> SealedBundle:
    measurements = [make_measurement(start + i, asn=key.asn) for i in range(n)]
    return seal(build(measurements, key, created_at=T0), key)


def keyfile_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
