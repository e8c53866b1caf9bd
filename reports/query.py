"""Reachability reports read from the rollups: one row per platform, network and time bucket.

A cell's ``state`` is its verdict by majority of votes (one per probe key, the majority of the
key's runs there: ``collectors.votes``): failing (blocked, throttled, outage) when more than half of
its votes fail, the most frequent failing verdict then; reachable when at least half are
reachable; otherwise inconclusive. A
network outage (every platform measured in the network failing, with the canaries:
``outage.local``) makes every cell of that bucket ``outage``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, literal_column, select

from collectors.rollup import bucket_of, epoch
from collectors.rollup_tables import (
    report_cells,
    report_confirmations,
    report_methods,
    report_networks,
)
from probe.model.verdict import METHODS, SEVERITY, VerdictKind
from reports.model import Grain, ReachabilityRow, ReportQuery, construct

CellId = tuple[int, str, str, int]  # bucket, platform, country, asn
NetworkId = tuple[int, str, int]  # bucket, country, asn
FAILING: tuple[VerdictKind, ...] = ("blocked", "throttled", "outage")
FAMILIES: dict[VerdictKind, frozenset[str]] = {
    "blocked": frozenset({"dns", "tcp", "tls", "http", "quic", "blocked"}),
    "throttled": frozenset({"throttle", "throttled"}),
    "outage": frozenset({"outage"}),
}


@dataclass(frozen=True, slots=True)
class Cell:
    """Verdict counts of one platform in one network over one bucket."""

    bucket: int
    platform: str
    country: str
    asn: int
    measurements: int
    probes: int
    reachable: int
    blocked: int
    throttled: int
    outage: int
    inconclusive: int
    last_digest: str
    failure_digest: str | None

    @property
    def id(self) -> CellId:
        return (self.bucket, self.platform, self.country, self.asn)

    @property
    def failures(self) -> int:
        return self.blocked + self.throttled + self.outage

    def count(self, kind: VerdictKind) -> int:
        return int(getattr(self, kind))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def where(
    table: Table, query: ReportQuery, grain: Grain, *, platform: bool = True
) -> ColumnElement[bool]:
    """The rows of ``table`` in the query's window and filters (``platform=False``: any)."""
    c = table.c
    clauses = [
        c.grain == grain,
        c.bucket >= bucket_of(epoch(query.since), grain),
        c.bucket < epoch(query.until),
    ]
    if platform and query.platform is not None:
        clauses.append(c.platform == query.platform)
    if query.country is not None:
        clauses.append(c.country == query.country)
    if query.asn is not None:
        clauses.append(c.asn == query.asn)
    return and_(*clauses)


def load_cells(conn: Connection, query: ReportQuery, grain: Grain) -> list[Cell]:
    c = report_cells.c
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.measurements, c.probes, c.reachable)
        .add_columns(c.blocked, c.throttled, c.outage, c.inconclusive)
        .add_columns(c.last_digest, c.failure_digest)
        .where(where(report_cells, query, grain))
        .order_by(c.platform, c.country, c.asn, c.bucket)
    )
    return [Cell(*row) for row in rows]


def load_methods(
    conn: Connection, query: ReportQuery, grain: Grain
) -> dict[CellId, dict[str, int]]:
    c = report_methods.c
    found: dict[CellId, dict[str, int]] = defaultdict(dict)
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.method, c["count"]).where(
            where(report_methods, query, grain)
        )
    )
    for bucket, platform, country, asn, method, count in rows:
        found[(bucket, platform, country, asn)][method] = count
    return found


def load_confirmations(
    conn: Connection, query: ReportQuery, grain: Grain
) -> dict[CellId, set[str]]:
    c = report_confirmations.c
    found: dict[CellId, set[str]] = defaultdict(set)
    rows = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.family).where(
            where(report_confirmations, query, grain)
        )
    )
    for bucket, platform, country, asn, fam in rows:
        found[(bucket, platform, country, asn)].add(fam)
    return found


def network_outages(conn: Connection, query: ReportQuery, grain: Grain) -> set[NetworkId]:
    """Buckets where every platform measured in a network failed, with the canaries.

    Every platform's cell has a failing majority, and at least half of the network's votes are
    for ``outage.local`` (canaries and controls failed from the vantage). One query
    over ``report_networks`` (kept at ingest), whatever the query's platform.
    """
    n = report_networks.c
    rows = conn.execute(
        select(n.bucket, n.country, n.asn).where(
            where(report_networks, query, grain, platform=False), *network_down(report_networks)
        )
    )
    return {(b, cc, a) for b, cc, a in rows}


def network_down(table: Any) -> list[ColumnElement[bool]]:
    """The outage test over a ``report_networks`` row (or an alias of the table)."""
    n = table.c
    return [n.failing == n.cells, literal_column("2") * n.local_votes >= n.votes]


def cell_state(cell: Cell, network_outage: bool = False) -> VerdictKind:
    """The cell's verdict by majority (module docstring)."""
    return state_of(
        cell.probes, cell.reachable, cell.blocked, cell.throttled, cell.outage, network_outage
    )


_BY_SEVERITY = sorted(FAILING, key=SEVERITY.index)  # ties between failing verdicts: most severe


def state_of(
    votes: int, reachable: int, blocked: int, throttled: int, outage: int, down: bool
) -> VerdictKind:
    """``cell_state`` from the vote counts (``votes``: the cell's probes)."""
    if down:
        return "outage"
    if 2 * (blocked + throttled + outage) > votes:
        counts = {"blocked": blocked, "throttled": throttled, "outage": outage}
        best = max(counts.values())
        return next(kind for kind in _BY_SEVERITY if counts[kind] == best)
    if 2 * reachable >= votes:
        return "reachable"
    return "inconclusive"


def dominant_method(methods: dict[str, int], state: VerdictKind) -> str | None:
    """The most frequent method that goes with ``state`` (ties: alphabetical)."""
    best: str | None = None
    most = 0
    for name, n in methods.items():
        if METHODS.get(name) == state and (best is None or n > most or (n == most and name < best)):
            best, most = name, n
    return best


def is_confirmed(state: VerdictKind, families: set[str], network_outage: bool) -> bool:
    """A block or throttle agreed on by two probes; never during a network outage."""
    if network_outage or state not in ("blocked", "throttled"):
        return False
    return bool(families & FAMILIES[state])


def sample_digest(cell: Cell, state: VerdictKind) -> str:
    """A bundle that shows the cell's state: a failing one for a failing cell."""
    if state != "reachable" and cell.failure_digest:
        return cell.failure_digest
    return cell.last_digest


def reachability(conn: Connection, query: ReportQuery) -> list[ReachabilityRow]:
    """Rows ordered by platform, country, ASN and bucket.

    Rows are built from the fetched tuples (no intermediate ``Cell``) and constructed without
    validation: every field comes from a typed column or is computed here.
    """
    grain = query.bucket
    c = report_cells.c
    cells = conn.execute(
        select(c.bucket, c.platform, c.country, c.asn, c.measurements, c.probes, c.reachable)
        .add_columns(c.blocked, c.throttled, c.outage, c.inconclusive)
        .add_columns(c.last_digest, c.failure_digest)
        .where(where(report_cells, query, grain))
        .order_by(c.platform, c.country, c.asn, c.bucket)
    ).all()
    if not cells:
        return []
    methods = load_methods(conn, query, grain)
    confirmations = load_confirmations(conn, query, grain)
    outages = network_outages(conn, query, grain)
    no_methods: dict[str, int] = {}
    no_families: set[str] = set()
    rows: list[ReachabilityRow] = []
    for bucket, platform, country, asn, m, probes, r, b, t, o, i, last, failure in cells:
        down = (bucket, country, asn) in outages
        state = state_of(probes, r, b, t, o, down)
        cell_methods = methods.get((bucket, platform, country, asn), no_methods)
        families = confirmations.get((bucket, platform, country, asn), no_families)
        rows.append(
            construct(
                ReachabilityRow,
                {
                    "bucket_start": to_datetime(bucket),
                    "platform": platform,
                    "country": country,
                    "asn": asn,
                    "state": state,
                    "measurements": m,
                    "probes": probes,
                    "reachable": r,
                    "blocked": b,
                    "throttled": t,
                    "outage": o,
                    "inconclusive": i,
                    "methods": dict(sorted(cell_methods.items())),
                    "dominant_method": dominant_method(cell_methods, state),
                    "confirmed": is_confirmed(state, families, down),
                    "confirmed_families": tuple(sorted(families)),
                    "network_outage": down,
                    "sample_digest": failure if state != "reachable" and failure else last,
                },
            )
        )
    return rows


def row_of(
    cell: Cell,
    methods: dict[CellId, dict[str, int]],
    confirmations: dict[CellId, set[str]],
    outages: set[NetworkId],
) -> ReachabilityRow:
    """The report row of one cell."""
    down = (cell.bucket, cell.country, cell.asn) in outages
    state = cell_state(cell, down)
    cell_methods = methods.get(cell.id, {})
    families = confirmations.get(cell.id, set())
    fields: dict[str, Any] = {
        "bucket_start": to_datetime(cell.bucket),
        "platform": cell.platform,
        "country": cell.country,
        "asn": cell.asn,
        "state": state,
        "measurements": cell.measurements,
        "probes": cell.probes,
        "reachable": cell.reachable,
        "blocked": cell.blocked,
        "throttled": cell.throttled,
        "outage": cell.outage,
        "inconclusive": cell.inconclusive,
        "methods": dict(sorted(cell_methods.items())),
        "dominant_method": dominant_method(cell_methods, state),
        "confirmed": is_confirmed(state, families, down),
        "confirmed_families": tuple(sorted(families)),
        "network_outage": down,
        "sample_digest": sample_digest(cell, state),
    }
    return construct(ReachabilityRow, fields)
