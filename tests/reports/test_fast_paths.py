"""The fast report paths give what a straightforward recomputation gives, on random data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from collectors.rollup import epoch, rebuild_networks
from collectors.rollup_tables import report_failing, report_networks
from collectors.runs import report_runs
from collectors.store import Store
from reports.incidents import VOTE_WINDOW, Rule, _span_runs, incidents
from reports.model import ReachabilityRow, ReportQuery, construct
from reports.query import reachability
from tests.reports import reference

T0 = datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
HOURS = 40
PLATFORMS = ("x", "youtube", "signal")
NETWORKS = (("PK", 64500), ("PK", 64501), ("RU", 64502), (None, None))
REGIMES: dict[str, list[tuple[float, str, str | None]]] = {  # weight, verdict, method
    "fine": [
        (0.9, "reachable", None),
        (0.05, "inconclusive", None),
        (0.05, "blocked", "dns.nxdomain"),
    ],
    "blocked": [
        (0.75, "blocked", "tls.reset"),
        (0.1, "blocked", "dns.nxdomain"),
        (0.15, "reachable", None),
    ],
    "throttled": [(0.7, "throttled", "throttle.rate"), (0.3, "reachable", None)],
    "down": [(0.85, "outage", "outage.local"), (0.15, "outage", "outage.platform")],
    "mixed": [
        (0.4, "reachable", None),
        (0.3, "blocked", "tcp.timeout"),
        (0.3, "inconclusive", None),
    ],
}


def _verdict(rng: random.Random, regime: str) -> tuple[str, str | None]:
    roll, total = rng.random(), 0.0
    for weight, verdict, method in REGIMES[regime]:
        total += weight
        if roll < total:
            return verdict, method
    return REGIMES[regime][-1][1:]


def load_random(
    store: Store, seed: int, *, hours: int = HOURS, change: float = 0.25, outages: float = 0.08
) -> None:
    """Random bundles: regimes that persist for hours per network (and platform), shuffled.

    ``change``: how likely a platform's regime changes each hour; ``outages``: how likely a
    network is down for an hour.
    """
    rng = random.Random(seed)
    regimes: dict[tuple[int, str], str] = {}
    bundles: list[tuple[str, str, list[dict[str, Any]]]] = []
    for n, (cc, asn) in enumerate(NETWORKS):
        keys = [f"{n:02d}{k:062x}" for k in range(3)]
        for key in keys:
            store.enroll(key, bytes(32), network=(cc, asn), voucher=f"token:{key}")
        for hour in range(hours):
            down = rng.random() < outages  # the whole network out for this hour
            for platform in PLATFORMS:
                previous = regimes.get((n, platform), "fine")
                if rng.random() < change:
                    previous = rng.choice(["fine", "fine", "blocked", "throttled", "mixed"])
                regimes[(n, platform)] = previous
            for key in keys:
                if rng.random() < 0.3:
                    continue  # this probe skipped the hour
                rows = []
                for platform in PLATFORMS:
                    for i in range(rng.randint(0, 3)):
                        regime = "down" if down else regimes[(n, platform)]
                        verdict, method = _verdict(rng, regime)
                        at = T0 + timedelta(hours=hour, minutes=rng.randint(0, 59))
                        rows.append(
                            {
                                "measurement_id": f"{key[:4]}-{hour}-{platform}-{i}",
                                "platform": platform,
                                "target": "t",
                                "domain": "d",
                                "country": cc,
                                "asn": asn,
                                "verdict": verdict,
                                "method": method,
                                "started_at": at,
                                "body": "{}",
                            }
                        )
                digest = f"{seed:04x}{n:04x}{hour:08x}{key[-8:]}".ljust(64, "0")
                bundles.append((digest, key, rows))  # one bundle per probe and hour
    rng.shuffle(bundles)  # arrival order is not time order: states come and go
    for digest, key, rows in bundles:
        store.add_bundle(digest, key, b"{}", rows)


def _queries() -> list[ReportQuery]:
    end = T0 + timedelta(hours=HOURS)
    return [
        ReportQuery(since=T0, until=end),
        ReportQuery(since=T0 + timedelta(hours=5), until=end - timedelta(hours=7)),
        ReportQuery(since=T0, until=end, bucket="day"),
        ReportQuery(since=T0, until=end, platform="x"),
        ReportQuery(since=T0, until=end, country="PK"),
        ReportQuery(since=T0, until=end, asn=64502),
        ReportQuery(since=T0, until=end, country="ZZ", asn=0),
    ]


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_paths_match_a_recomputation(engine: Engine, seed: int) -> None:
    load_random(Store(engine), seed)
    rules = [Rule(), Rule(close_after=1), Rule(close_after=3)]
    with engine.connect() as conn:
        seen = 0
        for query in _queries():
            want_rows = reference.reachability(conn, query)
            assert reachability(conn, query) == want_rows
            for rule in rules:
                want = reference.incidents(conn, query, rule)
                assert incidents(conn, query, rule) == want
                seen += len(want)
        assert seen > 20  # the data holds incidents of every kind
        kinds = {(i.kind, i.scope) for i in incidents(conn, _queries()[0])}
        assert {("blocked", "platform"), ("outage", "network")} <= kinds
        networks = sorted(conn.execute(select(report_networks)).all())
        failing = sorted(conn.execute(select(report_failing)).all())
    with engine.begin() as conn:  # what ingest kept equals a rebuild from the cells
        rebuild_networks(conn)
        assert sorted(conn.execute(select(report_networks)).all()) == networks
        assert sorted(conn.execute(select(report_failing)).all()) == failing


@pytest.mark.parametrize("seed", [3, 4])
def test_incidents_read_around_failures_as_over_every_run(engine: Engine, seed: int) -> None:
    """Rare failures in long reachable stretches: the runs read around them are enough."""
    hours = 160
    load_random(Store(engine), seed, hours=hours, change=0.04, outages=0.02)
    end = T0 + timedelta(hours=hours)
    queries = [
        ReportQuery(since=T0, until=end),
        ReportQuery(since=T0 + timedelta(hours=50), until=end - timedelta(hours=30)),
        ReportQuery(since=T0 + timedelta(hours=90), until=end, platform="youtube"),
        ReportQuery(since=T0, until=end, country="PK"),
    ]
    with engine.connect() as conn:
        seen = 0
        for query in queries:
            for rule in (Rule(), Rule(close_after=1), Rule(close_after=4)):
                want = reference.incidents(conn, query, rule)
                assert incidents(conn, query, rule) == want
                seen += len(want)
        assert seen > 10
        lead = epoch(T0) - VOTE_WINDOW
        read = _span_runs(conn, queries[0], False, lead, epoch(end), Rule())
        every = conn.execute(select(func.count()).select_from(report_runs)).scalar()
        assert 0 < sum(map(len, read.values())) < 3 * (every or 0) // 4  # a part left unread


def test_construct_is_model_construct() -> None:
    fields: dict[str, Any] = {
        "bucket_start": T0,
        "platform": "x",
        "country": "PK",
        "asn": 1,
        "state": "blocked",
        "measurements": 3,
        "probes": 1,
        "reachable": 0,
        "blocked": 3,
        "throttled": 0,
        "outage": 0,
        "inconclusive": 0,
        "methods": {"tls.reset": 3},
        "dominant_method": "tls.reset",
        "confirmed": False,
        "confirmed_families": (),
        "network_outage": False,
        "sample_digest": "d" * 64,
    }
    fast = construct(ReachabilityRow, dict(fields))
    assert fast == ReachabilityRow.model_construct(**fields) == ReachabilityRow(**fields)
    assert fast.model_fields_set == set(fields)
    assert fast.model_dump() == ReachabilityRow(**fields).model_dump()
