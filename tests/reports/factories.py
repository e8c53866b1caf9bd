"""A known scenario for report tests: four networks, signed bundles, hour by hour.

From T0 (2024-02-17 12:00 UTC), ten hours, each probe uploading one bundle per hour with three
measurements per platform (x, youtube):

- PK AS64500, probes a1 and a2: x blocked by ``tls.reset`` in hours 2-6, reachable otherwise.
- PK AS64501, probe b1: x blocked by ``dns.nxdomain`` from hour 3 on (one probe: unconfirmed).
- RU AS64502, probes c1 and c2: x throttled (``throttle.rate``) throughout.
- PK AS64503, probes d1 and d2: everything ``outage.local`` in hours 4-5 (a network outage).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collectors.bounds import TimeWindow
from collectors.ingest import Ingestor
from collectors.metrics import Metrics
from collectors.ratelimit import RateLimiter
from collectors.store import Store
from probe.evidence.bundle import SealedBundle, build, seal
from probe.evidence.keys import ProbeKey
from probe.model import Measurement, Observations, VantageInfo, Verdict
from probe.model.verdict import METHODS, ThroughputSummary
from tests.collectors.factories import make_key

T0 = datetime(2024, 2, 17, 12, 0, tzinfo=UTC)
HOURS = 10
PLATFORMS = ("x", "youtube")
PER_PLATFORM = 3


def measurement(
    i: int, platform: str, verdict: str, method: str | None, at: datetime, *, asn: int, cc: str
) -> Measurement:
    return Measurement(
        measurement_id=f"{asn}-{platform}-{at.isoformat()}-{i}",
        platform=platform,
        target=f"https://{platform}.example/{i}",
        domain=f"{platform}.example",
        started_at=at,
        runtime=0.5,
        vantage=VantageInfo(country=cc, asn=asn, network=f"isp{asn}", software="blockprobe 0.1.0"),
        local=Observations(),
        verdict=Verdict(
            kind=verdict,  # type: ignore[arg-type]
            method=method,
            confidence=0.9,
            evidence=(f"{method} seen",) if method else (),
            throughput=_rate(verdict, platform, i),
        ),
    )


def _rate(verdict: str, platform: str, i: int) -> ThroughputSummary | None:
    """A transfer on x's first endpoint: slow against the control when throttled."""
    if platform != "x" or i != 0 or verdict not in ("throttled", "reachable"):
        return None
    kbps = 120.0 if verdict == "throttled" else 2200.0
    return ThroughputSummary(
        bytes=65536,
        seconds=65536 * 8 / 1000 / kbps,
        kbps=kbps,
        control_kbps=2400.0,
        ratio=round(kbps / 2400.0, 4),
    )


@dataclass(frozen=True)
class Probe:
    name: str
    key: ProbeKey
    country: str


def scenario_verdict(asn: int, platform: str, hour: int) -> tuple[str, str | None]:
    if asn == 64500 and platform == "x" and 2 <= hour <= 6:
        return "blocked", "tls.reset"
    if asn == 64501 and platform == "x" and hour >= 3:
        return "blocked", "dns.nxdomain"
    if asn == 64502 and platform == "x":
        return "throttled", "throttle.rate"
    if asn == 64503 and 4 <= hour <= 5:
        return "outage", "outage.local"
    return "reachable", None


def probes() -> list[Probe]:
    spec = [("a1", 64500, "PK"), ("a2", 64500, "PK"), ("b1", 64501, "PK")]
    spec += [("c1", 64502, "RU"), ("c2", 64502, "RU"), ("d1", 64503, "PK"), ("d2", 64503, "PK")]
    return [Probe(name, make_key(asn), cc) for name, asn, cc in spec]


def scenario_bundles(all_probes: list[Probe]) -> Iterator[SealedBundle]:
    for hour in range(HOURS):
        for n, probe in enumerate(all_probes):
            at = T0 + timedelta(hours=hour, minutes=5 + n)
            asn = probe.key.asn
            assert asn is not None
            items = []
            for platform in PLATFORMS:
                verdict, method = scenario_verdict(asn, platform, hour)
                assert method is None or METHODS[method] == verdict
                items += [
                    measurement(i, platform, verdict, method, at, asn=asn, cc=probe.country)
                    for i in range(PER_PLATFORM)
                ]
            yield seal(build(items, probe.key, created_at=at), probe.key)


def load_scenario(store: Store) -> dict[str, list[str]]:
    """Enrol the probes and ingest every bundle through the collector's checks; digests by probe."""
    clock = (T0 + timedelta(hours=HOURS)).timestamp  # the collector's clock at the scenario's end
    window = TimeWindow(clock=clock)
    ingestor = Ingestor(store, RateLimiter(1e6, 1_000_000), Metrics(), window=window)
    all_probes = probes()
    names = {p.key.key_id: p.name for p in all_probes}
    for p in all_probes:
        network = (p.country, p.key.asn)
        voucher = f"token:{p.name}"  # each probe enrolled with its own token
        raw = p.key.public_key.public_bytes_raw()
        store.enroll(p.key.key_id, raw, network=network, voucher=voucher)
    digests: dict[str, list[str]] = {p.name: [] for p in all_probes}
    for sealed in scenario_bundles(all_probes):
        outcome = ingestor.submit(sealed.to_bytes())
        assert outcome.status == 201, outcome.body
        digests[names[sealed.envelope.signatures[0].keyid]].append(sealed.digest)
    return digests
