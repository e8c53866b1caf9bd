"""Reachability rows, confirmation, network outages and incidents over the known scenario."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from reports.incidents import Rule, Run, apply_rule, incidents, platform_status
from reports.model import ReportQuery
from reports.query import reachability
from tests.reports.factories import HOURS, T0

WINDOW = ReportQuery(since=T0, until=T0 + timedelta(hours=HOURS), bucket="hour")


def test_reachability_rows(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    engine, digests = loaded
    with engine.connect() as conn:
        rows = reachability(conn, WINDOW)
        day = reachability(conn, WINDOW.model_copy(update={"bucket": "day"}))
    assert len(rows) == 2 * 4 * HOURS
    cell = {(r.platform, r.asn, r.bucket_start): r for r in rows}
    blocked = cell[("x", 64500, T0 + timedelta(hours=3))]
    # verdict counts are votes: one per probe key, whatever it uploaded
    assert (blocked.state, blocked.blocked, blocked.measurements, blocked.probes) == (
        "blocked",
        2,
        6,
        2,
    )
    assert blocked.methods == {"tls.reset": 6}
    assert blocked.confirmed and blocked.confirmed_families == ("tls",)
    assert blocked.sample_digest in digests["a1"] + digests["a2"]
    single = cell[("x", 64501, T0 + timedelta(hours=3))]
    assert (single.state, single.dominant_method, single.confirmed) == (
        "blocked",
        "dns.nxdomain",
        False,
    )
    assert cell[("x", 64500, T0 + timedelta(hours=1))].state == "reachable"
    assert cell[("x", 64502, T0)].state == "throttled" and cell[("x", 64502, T0)].confirmed
    down = cell[("youtube", 64503, T0 + timedelta(hours=4))]
    assert (down.state, down.network_outage, down.confirmed) == ("outage", True, False)
    assert not cell[("youtube", 64503, T0 + timedelta(hours=6))].network_outage
    # The day bucket sums the hours' measurements; each probe votes once: 30 blocked and 30
    # reachable measurements tie, so both vote reachable.
    x500 = next(r for r in day if (r.platform, r.asn) == ("x", 64500))
    assert (x500.measurements, x500.blocked, x500.reachable, x500.probes) == (60, 0, 2, 2)
    # Filters.
    with engine.connect() as conn:
        only = reachability(conn, WINDOW.model_copy(update={"platform": "x", "asn": 64503}))
    assert {(r.platform, r.asn) for r in only} == {("x", 64503)}
    assert sum(r.network_outage for r in only) == 2  # judged over all platforms of the network


def test_incidents(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    engine, digests = loaded
    with engine.connect() as conn:
        found = incidents(conn, WINDOW)
    by = {(i.platform, i.asn): i for i in found}
    assert set(by) == {("x", 64500), ("x", 64501), ("x", 64502), (None, 64503)}
    a = by[("x", 64500)]
    assert (a.kind, a.scope, a.method, a.confirmed, a.probes, a.network) == (
        "blocked",
        "platform",
        "tls.reset",
        True,
        2,
        "isp64500",
    )
    # Onset and end at the measurements' own times: probe n measures at minute 5 + n.
    assert a.started_at == T0 + timedelta(hours=2, minutes=5)
    assert a.last_good_before == T0 + timedelta(hours=1, minutes=6)
    assert a.last_seen_at == T0 + timedelta(hours=6, minutes=6)
    assert a.first_good_after == a.ended_at == T0 + timedelta(hours=7, minutes=5)
    assert a.measurements == 5 * 2 * 3 and a.runs == 10
    assert set(a.sample_digests) <= set(digests["a1"] + digests["a2"]) and a.sample_digests
    b = by[("x", 64501)]
    assert (b.kind, b.confirmed, b.probes, b.ended_at) == ("blocked", False, 1, None)
    assert b.started_at == T0 + timedelta(hours=3, minutes=7)
    c = by[("x", 64502)]
    assert (c.kind, c.method, c.confirmed, c.ended_at, c.last_good_before) == (
        "throttled",
        "throttle.rate",
        True,
        None,
        None,
    )
    d = by[(None, 64503)]  # one network outage, not one per platform
    assert (d.kind, d.scope, d.method, d.confirmed) == ("outage", "network", "outage.local", True)
    assert d.started_at == T0 + timedelta(hours=4, minutes=10)
    assert d.ended_at == T0 + timedelta(hours=6, minutes=10)
    with engine.connect() as conn:
        only = incidents(conn, WINDOW.model_copy(update={"country": "RU"}))
        x_only = incidents(conn, WINDOW.model_copy(update={"platform": "x"}))
        late = incidents(conn, WINDOW.model_copy(update={"since": T0 + timedelta(hours=5)}))
    assert [(i.platform, i.asn) for i in only] == [("x", 64502)]
    assert (None, 64503) in {(i.platform, i.asn) for i in x_only}  # outages take every platform
    late_a = next(i for i in late if (i.platform, i.asn) == ("x", 64500))
    assert late_a == a  # open at the window start: its onset is found before it


def _run(minute: int, verdict: str, key: str = "k1", method: str | None = None) -> Run:
    failing = verdict in ("blocked", "throttled", "outage")
    at = float(minute * 60)
    return Run(
        at, f"d{minute}", "x", key, verdict, method, 3, at if failing else None,
        at if failing else None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        # (run pattern, one run a minute, [(kind, onset, end or None, last good before)])
        ("RRBBBRR", [("blocked", 2, 5, 1)]),
        ("RRBBBR", [("blocked", 2, 5, 1)]),  # the series ends reachable: ended
        ("RRBBBRB", [("blocked", 2, None, 1)]),  # one reachable run inside does not end it
        ("BBRBBRR", [("blocked", 0, 5, None)]),
        ("BB..RR", [("blocked", 0, 4, None)]),  # inconclusive runs change nothing
        ("BBTTRR", [("blocked", 0, 2, None), ("throttled", 2, 4, None)]),  # a new kind
        ("RRRR", []),
        ("B", [("blocked", 0, None, None)]),  # one failing run is reported too
    ],
)
def test_rule(series: str, expected: list[tuple[str, int, int | None, int | None]]) -> None:
    kinds = {"R": "reachable", "B": "blocked", "T": "throttled", ".": "inconclusive"}
    runs = [_run(m, kinds[ch]) for m, ch in enumerate(series)]
    spans = apply_rule(runs, platform_status, Rule(close_after=2))
    got = []
    for s in spans:
        end = s.good_after or s.ended_by
        before = s.good_before
        got.append(
            (
                s.kind,
                int(s.failing[0].started // 60),
                None if end is None else int(end.started // 60),
                None if before is None else int(before.started // 60),
            )
        )
    assert got == expected
