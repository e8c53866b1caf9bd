"""Reachability rows, confirmation, network outages and incidents over the known scenario."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from reports.incidents import Rule, find_spans, incidents
from reports.model import ReportQuery
from reports.query import Cell, reachability
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
    assert set(by) == {("x", 64500), ("x", 64501), ("x", 64502), ("x", 64503), ("youtube", 64503)}
    a = by[("x", 64500)]
    assert (a.kind, a.scope, a.method, a.confirmed, a.probes) == (
        "blocked",
        "platform",
        "tls.reset",
        True,
        2,
    )
    assert a.started_at == T0 + timedelta(hours=2)
    assert a.ended_at == T0 + timedelta(hours=7)
    assert a.last_seen_at == T0 + timedelta(hours=7)
    assert a.measurements == 5 * 6 and a.failing_buckets == 5
    assert set(a.sample_digests) <= set(digests["a1"] + digests["a2"]) and a.sample_digests
    b = by[("x", 64501)]
    assert (b.kind, b.confirmed, b.probes, b.ended_at) == ("blocked", False, 1, None)
    assert b.started_at == T0 + timedelta(hours=3)
    c = by[("x", 64502)]
    assert (c.kind, c.method, c.confirmed, c.started_at, c.ended_at) == (
        "throttled",
        "throttle.rate",
        True,
        T0,
        None,
    )
    for platform in ("x", "youtube"):
        d = by[(platform, 64503)]
        assert (d.kind, d.scope, d.method) == ("outage", "network", "outage.local")
        assert (d.started_at, d.ended_at) == (T0 + timedelta(hours=4), T0 + timedelta(hours=6))
    with engine.connect() as conn:
        only = incidents(conn, WINDOW.model_copy(update={"country": "RU"}))
    assert [(i.platform, i.asn) for i in only] == [("x", 64502)]


def _cell(hour: int, reachable: int = 0, blocked: int = 0, throttled: int = 0) -> Cell:
    n = reachable + blocked + throttled
    # one vote per probe: n probes, n measurements
    return Cell(hour * 3600, "x", "PK", 1, n, n, reachable, blocked, throttled, 0, 0, "d", None)


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        # (bucket pattern, [(kind, start hour, end hour or None)])
        ("RRBBBRR", [("blocked", 2, 5)]),
        ("RRBBBR", [("blocked", 2, None)]),  # one reachable bucket does not close it
        ("BBRBBRR", [("blocked", 0, 5)]),  # a single reachable bucket inside: one incident
        ("BB..RR", [("blocked", 0, 4)]),  # too few measurements: ignored, neither open nor close
        ("BBTTRR", [("blocked", 0, 2), ("throttled", 2, 4)]),  # a new kind opens a new one
        ("RRRR", []),
        ("b", []),  # failing but under min_measurements
    ],
)
def test_change_point_rule(series: str, expected: list[tuple[str, int, int | None]]) -> None:
    make = {
        "R": lambda h: _cell(h, reachable=3),
        "B": lambda h: _cell(h, blocked=3, reachable=1),
        "T": lambda h: _cell(h, throttled=2, reachable=1),
        ".": lambda h: _cell(h, blocked=1),
        "b": lambda h: _cell(h, blocked=2),
    }
    cells = [make[ch](h) for h, ch in enumerate(series)]
    spans = find_spans(cells, set(), Rule(min_measurements=3, close_after=2))
    got = [(s.kind, s.start // 3600, None if s.end is None else s.end // 3600) for s in spans]
    assert got == expected


def test_half_failing_bucket_does_not_open() -> None:
    """Exactly half failing is not "more than half"."""
    cells = [_cell(0, reachable=2, blocked=2), _cell(1, reachable=2, blocked=2)]
    assert find_spans(cells, set()) == []
