"""Rollups maintained at ingest: verdict and method counts, probe presence and confirmations.

``update_rollups`` runs inside the collector's ingest transaction (``collectors.store``), so the
rollups always match the stored measurements. It writes one executemany per table and bundle,
with statements built once per dialect. ``report_networks`` is kept from each cell's counts before
and after the bundle (the cells upsert returns them). ``backfill`` rebuilds the v3 rollups from the
measurements (the migration that adds the tables calls it); ``rebuild_networks`` derives
``report_networks`` and ``report_failing`` from them (v4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from reports.tables import (
    UNKNOWN_ASN,
    UNKNOWN_COUNTRY,
    failing_cell,
    report_cells,
    report_confirmations,
    report_failing,
    report_methods,
    report_networks,
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


_KEY = ["grain", "bucket", "platform", "country", "asn"]
_NETWORK = ["grain", "bucket", "country", "asn"]
_GRAIN_SECONDS = tuple((grain, SECONDS[grain]) for grain in GRAINS)
_SLOT = {name: 2 + i for i, name in enumerate(VERDICTS)}  # index in a cell's counts
_COUNTS = ("measurements", "probes", *VERDICTS)  # then "failed" (index 7): failing measurements
_FAILED = 7
LOCAL_OUTAGE = "outage.local"

Presence = tuple[str, int, str, str, int, str]  # cell key + family ("" = any measurement)


def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


_STATEMENTS: dict[tuple[str, str], Any] = {}  # (dialect, name): statement, built once


def _statement(conn: Connection, name: str) -> Any:
    key = (conn.dialect.name, name)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = _BUILDERS[name](conn)
    return stmt


def _presence_stmt(conn: Connection) -> Any:
    p = report_probes.c
    return (
        _insert(conn, report_probes)
        .on_conflict_do_nothing()
        .returning(p.grain, p.bucket, p.platform, p.country, p.asn, p.family)
    )


def _cells_stmt(conn: Connection) -> Any:
    stmt = _insert(conn, report_cells)
    c = report_cells.c
    return stmt.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            **{name: c[name] + stmt.excluded[name] for name in _COUNTS},
            "last_digest": stmt.excluded.last_digest,
            "failure_digest": func.coalesce(stmt.excluded.failure_digest, c.failure_digest),
        },
    )


def _cells_returning_stmt(conn: Connection) -> Any:
    c = report_cells.c
    return _statement(conn, "cells").returning(
        c.grain,
        c.bucket,
        c.platform,
        c.country,
        c.asn,
        c.measurements,
        c.blocked + c.throttled + c.outage,
    )


def _methods_stmt(conn: Connection) -> Any:
    stmt = _insert(conn, report_methods)
    return stmt.on_conflict_do_update(
        index_elements=[*_KEY, "method"],
        set_={"count": report_methods.c.count + stmt.excluded["count"]},
    )


def _networks_stmt(conn: Connection) -> Any:
    stmt = _insert(conn, report_networks)
    n = report_networks.c
    return stmt.on_conflict_do_update(
        index_elements=_NETWORK,
        set_={
            name: n[name] + stmt.excluded[name]
            for name in ("measurements", "outage_local", "cells", "failing")
        },
    )


def _unfail_stmt(conn: Connection) -> Any:
    f = report_failing.c
    return delete(report_failing).where(
        f.grain == bindparam("g"),
        f.bucket == bindparam("b"),
        f.platform == bindparam("p"),
        f.country == bindparam("c"),
        f.asn == bindparam("a"),
    )


def _agreeing_stmt(conn: Connection) -> Any:
    p = report_probes.c
    series = tuple_(p.platform, p.country, p.asn, p.bucket, p.family)
    return (
        select(p.platform, p.country, p.asn, p.bucket, p.family, func.count())
        .where(p.grain == "hour", series.in_(bindparam("wanted", expanding=True)))
        .group_by(p.platform, p.country, p.asn, p.bucket, p.family)
    )


def _confirm_stmt(conn: Connection) -> Any:
    return _insert(conn, report_confirmations).on_conflict_do_nothing()


_BUILDERS: dict[str, Callable[[Connection], Any]] = {
    "presence": _presence_stmt,
    "cells": _cells_stmt,
    "cells_returning": _cells_returning_stmt,
    "methods": _methods_stmt,
    "networks": _networks_stmt,
    "fail": lambda conn: insert(report_failing),
    "unfail": _unfail_stmt,
    "agreeing": _agreeing_stmt,
    "confirm": _confirm_stmt,
}


def update_rollups(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    *,
    key_id: str,
    digest: str,
    networks: bool = True,
) -> None:
    """Add one bundle's measurement rows (as ``measurements`` holds them) to the rollups.

    One statement per table (executemany). ``networks=False`` leaves ``report_networks`` and
    ``report_failing`` alone (the v3 backfill, before they exist; v4 then derives them with
    ``rebuild_networks``).
    """
    cells: dict[CellKey, list[int]] = {}  # measurements, probes, the verdicts, failed
    methods: dict[tuple[str, int, str, str, int, str], int] = {}
    presence: set[Presence] = set()
    for row in rows:
        verdict = str(row["verdict"])
        method = row["method"]
        country = row["country"] or UNKNOWN_COUNTRY
        asn = UNKNOWN_ASN if row["asn"] is None else int(row["asn"])
        platform = str(row["platform"])
        started = epoch(row["started_at"])
        slot = _SLOT[verdict]
        failed = verdict in FAILURES
        fam = family(verdict, method) if failed else ""
        for grain, seconds in _GRAIN_SECONDS:
            key: CellKey = (grain, started - started % seconds, platform, country, asn)
            counts = cells.get(key)
            if counts is None:
                counts = cells[key] = [0] * 8
            counts[0] += 1
            counts[slot] += 1
            if method:
                mkey = (*key, str(method))
                methods[mkey] = methods.get(mkey, 0) + 1
            presence.add((*key, ""))
            if failed:
                counts[_FAILED] += 1
                presence.add((*key, fam))
    if not cells:
        return
    new = _add_presence(conn, sorted(presence), key_id)
    for first in new:
        if not first[5]:
            cells[first[:5]][1] += 1
    params = [
        {
            "grain": key[0],
            "bucket": key[1],
            "platform": key[2],
            "country": key[3],
            "asn": key[4],
            **dict(zip(_COUNTS, counts, strict=False)),
            "last_digest": digest,
            "failure_digest": digest if counts[_FAILED] else None,
        }
        for key, counts in sorted(cells.items())
    ]
    if networks:
        after = conn.execute(_statement(conn, "cells_returning"), params).all()
        _update_networks(conn, cells, methods, after)
    else:
        conn.execute(_statement(conn, "cells"), params)
    if methods:
        conn.execute(
            _statement(conn, "methods"),
            [
                {
                    "grain": k[0],
                    "bucket": k[1],
                    "platform": k[2],
                    "country": k[3],
                    "asn": k[4],
                    "method": k[5],
                    "count": n,
                }
                for k, n in sorted(methods.items())
            ],
        )
    _confirm(conn, sorted(p for p in new if p[0] == "hour" and p[5]))


def _update_networks(
    conn: Connection,
    cells: Mapping[CellKey, list[int]],
    methods: Mapping[tuple[str, int, str, str, int, str], int],
    after: Sequence[Sequence[Any]],
) -> None:
    """Add the bundle's cells to their networks' rows, from each cell's counts before and after.

    ``after`` holds each upserted cell's key, measurements and failures once updated; the counts
    before are those minus this bundle's, so a cell is new when it had no measurements, and its
    failing majority may have come or gone (``report_failing`` follows).
    """
    delta: dict[tuple[str, int, str, int], list[int]] = {}
    fail: list[dict[str, Any]] = []
    unfail: list[dict[str, Any]] = []
    for grain, bucket, platform, country, asn, measured, failures in after:
        added = cells[(grain, bucket, platform, country, asn)]
        before_m, before_f = measured - added[0], failures - added[_FAILED]
        was = before_m > 0 and 2 * before_f > before_m
        now = 2 * failures > measured
        row = delta.setdefault((grain, bucket, country, asn), [0, 0, 0, 0])
        row[0] += added[0]
        row[2] += before_m == 0
        row[3] += now - was
        if now and not was:
            fail.append(_key_dict((grain, bucket, platform, country, asn)))
        elif was and not now:
            unfail.append({"g": grain, "b": bucket, "p": platform, "c": country, "a": asn})
    if fail:
        conn.execute(_statement(conn, "fail"), sorted(fail, key=lambda r: tuple(r.values())))
    if unfail:
        conn.execute(_statement(conn, "unfail"), unfail)
    for (grain, bucket, _platform, country, asn, method), n in methods.items():
        if method == LOCAL_OUTAGE:
            delta[(grain, bucket, country, asn)][1] += n
    conn.execute(
        _statement(conn, "networks"),
        [
            {
                "grain": k[0],
                "bucket": k[1],
                "country": k[2],
                "asn": k[3],
                "measurements": v[0],
                "outage_local": v[1],
                "cells": v[2],
                "failing": v[3],
            }
            for k, v in sorted(delta.items())
        ],
    )


def _add_presence(conn: Connection, presence: Sequence[Presence], key_id: str) -> list[Presence]:
    """Insert presence rows; returns the ones that were new (the key's first in that cell)."""
    params = [
        {
            "grain": k[0],
            "bucket": k[1],
            "platform": k[2],
            "country": k[3],
            "asn": k[4],
            "key_id": key_id,
            "family": k[5],
        }
        for k in presence
    ]
    return [tuple(row) for row in conn.execute(_statement(conn, "presence"), params)]


def _confirm(conn: Connection, new: Sequence[Presence]) -> None:
    """Record a confirmation where this bundle makes a second probe agree within the hour."""
    if not new:
        return
    wanted = [
        (platform, country, asn, bucket, fam) for _g, bucket, platform, country, asn, fam in new
    ]
    confirmed: list[dict[str, Any]] = []
    for platform, country, asn, bucket, fam, agreeing in conn.execute(
        _statement(conn, "agreeing"), {"wanted": wanted}
    ):
        if agreeing >= CONFIRM_PROBES:
            for grain in GRAINS:
                key = (grain, bucket_of(bucket, grain), platform, country, asn)
                confirmed.append({**_key_dict(key), "family": fam})
    if confirmed:
        confirmed.sort(key=lambda r: tuple(r.values()))
        conn.execute(_statement(conn, "confirm"), confirmed)


def _key_dict(key: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_KEY, key, strict=True))


def rebuild_networks(conn: Connection) -> int:
    """Recompute ``report_networks`` and ``report_failing`` from the cells and methods.

    Returns the number of network rows.
    """
    c, m = report_cells.c, report_methods.c
    local = (
        select(m.grain, m.bucket, m.country, m.asn, func.sum(m["count"]).label("n"))
        .where(m.method == LOCAL_OUTAGE)
        .group_by(m.grain, m.bucket, m.country, m.asn)
        .subquery()
    )
    per_network = (
        select(
            c.grain,
            c.bucket,
            c.country,
            c.asn,
            func.sum(c.measurements).label("measurements"),
            func.count().label("cells"),
            func.sum(case((failing_cell(), 1), else_=0)).label("failing"),
        )
        .group_by(c.grain, c.bucket, c.country, c.asn)
        .subquery()
    )
    w = per_network.c
    query = select(
        w.grain,
        w.bucket,
        w.country,
        w.asn,
        w.measurements,
        func.coalesce(local.c.n, 0),
        w.cells,
        w.failing,
    ).outerjoin(
        local,
        and_(
            local.c.grain == w.grain,
            local.c.bucket == w.bucket,
            local.c.country == w.country,
            local.c.asn == w.asn,
        ),
    )
    conn.execute(delete(report_networks))
    names = ["grain", "bucket", "country", "asn", "measurements", "outage_local", "cells"]
    conn.execute(insert(report_networks).from_select([*names, "failing"], query))
    conn.execute(delete(report_failing))
    conn.execute(
        insert(report_failing).from_select(
            _KEY, select(c.grain, c.bucket, c.platform, c.country, c.asn).where(failing_cell())
        )
    )
    return int(conn.execute(select(func.count()).select_from(report_networks)).scalar_one())


def backfill(conn: Connection, chunk: int = 5000) -> int:
    """Rebuild the v3 rollups from stored measurements (one bundle at a time); returns the count.

    ``report_networks`` is not touched (it does not exist yet at v3): ``rebuild_networks``
    derives it from the cells afterwards.
    """
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
            update_rollups(conn, pending, key_id=current[1], digest=current[0], networks=False)
            pending = []
        current = (row.bundle_digest, row.key_id)
        pending.append(row._asdict())
        total += 1
    if current is not None:
        update_rollups(conn, pending, key_id=current[1], digest=current[0], networks=False)
    return total
