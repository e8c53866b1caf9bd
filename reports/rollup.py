"""Rollups maintained at ingest: verdict and method counts, probe presence and confirmations.

``update_rollups`` runs inside the collector's ingest transaction (``collectors.store``), so the
rollups always match the stored measurements. ``backfill`` rebuilds them from the measurements
(the migration that adds the tables calls it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from reports.tables import (
    UNKNOWN_ASN,
    UNKNOWN_COUNTRY,
    report_cells,
    report_confirmations,
    report_methods,
    report_probes,
)

Grain = Literal["hour", "day"]
GRAINS: tuple[Grain, ...] = ("hour", "day")
SECONDS: dict[Grain, int] = {"hour": 3600, "day": 86400}
VERDICTS = ("reachable", "blocked", "throttled", "outage", "inconclusive")
FAILURES = frozenset({"blocked", "throttled", "outage"})
CONFIRM_PROBES = 2  # distinct probes that must agree, in one hour, for a confirmation

CellKey = tuple[str, int, str, str, int]  # grain, bucket, platform, country, asn


def epoch(moment: datetime) -> int:
    """Seconds since the epoch; a naive datetime is taken as UTC (SQLite returns those)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def bucket_of(moment: datetime | int, grain: Grain) -> int:
    """The start of the ``grain`` bucket that holds ``moment`` (epoch seconds)."""
    seconds = moment if isinstance(moment, int) else epoch(moment)
    return seconds - seconds % SECONDS[grain]


def family(verdict: str, method: str | None) -> str:
    """The method family: dns, tcp, tls, http, quic, throttle or outage (the method's stage)."""
    return method.split(".", 1)[0] if method else verdict


def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def update_rollups(
    conn: Connection, rows: Sequence[Mapping[str, Any]], *, key_id: str, digest: str
) -> None:
    """Add one bundle's measurement rows (as ``measurements`` holds them) to the rollups."""
    cells: dict[CellKey, Counter[str]] = {}
    methods: Counter[tuple[str, int, str, str, int, str]] = Counter()
    presence: set[tuple[str, int, str, str, int, str]] = set()  # cell key + family
    for row in rows:
        verdict = str(row["verdict"])
        method = row["method"]
        country = row["country"] or UNKNOWN_COUNTRY
        asn = UNKNOWN_ASN if row["asn"] is None else int(row["asn"])
        started = epoch(row["started_at"])
        for grain in GRAINS:
            key: CellKey = (grain, bucket_of(started, grain), str(row["platform"]), country, asn)
            counts = cells.setdefault(key, Counter())
            counts[verdict] += 1
            counts["measurements"] += 1
            if method:
                methods[(*key, str(method))] += 1
            presence.add((*key, ""))
            if verdict in FAILURES:
                counts["failed"] += 1
                presence.add((*key, family(verdict, method)))
    if not cells:
        return
    new = _add_presence(conn, sorted(presence), key_id)
    for first in new:
        if not first[5]:
            cells[first[:5]]["probes"] += 1
    _upsert_cells(conn, cells, digest)
    if methods:
        stmt = _insert(conn, report_methods)
        stmt = stmt.on_conflict_do_update(
            index_elements=[*_KEY, "method"],
            set_={"count": report_methods.c.count + stmt.excluded["count"]},
        )
        params = [
            {**_key_dict(k[:5]), "method": k[5], "count": n} for k, n in sorted(methods.items())
        ]
        conn.execute(stmt, params)
    _confirm(conn, sorted(p for p in new if p[0] == "hour" and p[5]))


_KEY = ["grain", "bucket", "platform", "country", "asn"]


def _key_dict(key: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_KEY, key, strict=True))


def _add_presence(
    conn: Connection, presence: Sequence[tuple[str, int, str, str, int, str]], key_id: str
) -> list[tuple[str, int, str, str, int, str]]:
    """Insert presence rows; returns the ones that were new (the key's first in that cell)."""
    p = report_probes.c
    stmt = (
        _insert(conn, report_probes)
        .on_conflict_do_nothing()
        .returning(p.grain, p.bucket, p.platform, p.country, p.asn, p.family)
    )
    params = [{**_key_dict(k[:5]), "key_id": key_id, "family": k[5]} for k in presence]
    return [tuple(row) for row in conn.execute(stmt, params)]


def _upsert_cells(conn: Connection, cells: Mapping[CellKey, Counter[str]], digest: str) -> None:
    stmt = _insert(conn, report_cells)
    c = report_cells.c
    stmt = stmt.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            **{
                name: c[name] + stmt.excluded[name]
                for name in ("measurements", "probes", *VERDICTS)
            },
            "last_digest": stmt.excluded.last_digest,
            "failure_digest": func.coalesce(stmt.excluded.failure_digest, c.failure_digest),
        },
    )
    params = [
        {
            **_key_dict(key),
            "measurements": counts["measurements"],
            "probes": counts["probes"],
            **{name: counts[name] for name in VERDICTS},
            "last_digest": digest,
            "failure_digest": digest if counts["failed"] else None,
        }
        for key, counts in sorted(cells.items())
    ]
    conn.execute(stmt, params)


def _confirm(conn: Connection, new: Iterable[tuple[str, int, str, str, int, str]]) -> None:
    """Record a confirmation where this bundle makes a second probe agree within the hour."""
    p = report_probes.c
    confirmed: list[dict[str, Any]] = []
    for _grain, bucket, platform, country, asn, fam in new:
        agreeing = conn.execute(
            select(func.count())
            .select_from(report_probes)
            .where(
                p.grain == "hour",
                p.platform == platform,
                p.country == country,
                p.asn == asn,
                p.bucket == bucket,
                p.family == fam,
            )
        ).scalar_one()
        if agreeing >= CONFIRM_PROBES:
            for grain in GRAINS:
                key = (grain, bucket_of(bucket, grain), platform, country, asn)
                confirmed.append({**_key_dict(key), "family": fam})
    if confirmed:
        conn.execute(_insert(conn, report_confirmations).on_conflict_do_nothing(), confirmed)


def backfill(conn: Connection, chunk: int = 5000) -> int:
    """Rebuild the rollups from stored measurements (one bundle at a time); returns the count."""
    from collectors.schema import bundles, measurements  # the collector's tables

    m = measurements.c
    query = (
        select(m.bundle_digest, bundles.c.key_id, m.platform, m.country, m.asn, m.verdict)
        .add_columns(m.method, m.started_at)
        .join(bundles, bundles.c.digest == m.bundle_digest)
        .order_by(m.bundle_digest)
    )
    total = 0
    current: tuple[str, str] | None = None
    pending: list[dict[str, Any]] = []
    for row in conn.execute(query).yield_per(chunk):
        if current is not None and row.bundle_digest != current[0]:
            update_rollups(conn, pending, key_id=current[1], digest=current[0])
            pending = []
        current = (row.bundle_digest, row.key_id)
        pending.append(row._asdict())
        total += 1
    if current is not None:
        update_rollups(conn, pending, key_id=current[1], digest=current[0])
    return total
