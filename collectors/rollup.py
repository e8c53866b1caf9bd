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
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from collectors.rollup_tables import (
    TABLES,
    UNKNOWN_ASN,
    UNKNOWN_COUNTRY,
    failing_cell,
    report_cells,
    report_confirmations,
    report_failing,
    report_methods,
    report_networks,
    report_probes,
    report_votes,
)
from collectors.runs import run_verdict
from collectors.votes import local_outage_vote, vote_of
from probe.model.verdict import VERDICTS

Grain = Literal["hour", "day"]
GRAINS: tuple[Grain, ...] = ("hour", "day")
SECONDS: dict[Grain, int] = {"hour": 3600, "day": 86400}
FAILURES = frozenset({"blocked", "throttled", "outage"})
CONFIRM_PROBES = 2  # distinct enrolment credentials whose keys must agree, in one hour

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
_COUNTS = ("measurements", "probes", *VERDICTS)  # then "failed" (index 7): failing measurements
_FAILED = 7  # in a bundle's additions per cell: failing measurements
_LOCAL = 6  # in a bundle's additions per cell (after the five verdicts): outage.local ones
LOCAL_OUTAGE = "outage.local"
_NETWORK_COUNTS = ("measurements", "outage_local", "cells", "failing", "votes", "local_votes")

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
        c.probes,
        c.blocked + c.throttled + c.outage,
    )


def _votes_stmt(conn: Connection) -> Any:
    stmt = _insert(conn, report_votes)
    v = report_votes.c
    counted = (*VERDICTS, "outage_local")
    return stmt.on_conflict_do_update(
        index_elements=["grain", "platform", "country", "asn", "bucket", "key_id"],
        set_={name: v[name] + stmt.excluded[name] for name in counted},
    ).returning(v.grain, v.bucket, v.platform, v.country, v.asn, *(v[n] for n in counted))


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
        set_={name: n[name] + stmt.excluded[name] for name in _NETWORK_COUNTS},
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
    """Per series, hour and family: how many distinct enrolment credentials agree."""
    from collectors.schema import probes  # the collector's table of enrolled keys

    p = report_probes.c
    series = tuple_(p.platform, p.country, p.asn, p.bucket, p.family)
    return (
        select(p.platform, p.country, p.asn, p.bucket, p.family)
        .add_columns(func.count(func.distinct(probes.c.voucher)))
        .join_from(report_probes, probes, probes.c.key_id == p.key_id)
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
    "votes": _votes_stmt,
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

    One statement per table (executemany). The key's counts in each cell (``report_votes``) come
    back from their upsert; its vote before and after the bundle (``collectors.votes``) gives the
    change to the cell's vote counts, so a key has one vote per cell however much it uploads.
    ``networks=False`` leaves ``report_networks`` and ``report_failing`` alone (a rebuild derives
    them afterwards with ``rebuild_networks``).
    """
    added: dict[CellKey, list[int]] = {}  # measurements, the five verdicts, failed, outage.local
    methods: dict[tuple[str, int, str, str, int, str], int] = {}
    presence: set[Presence] = set()
    run_methods: dict[CellKey, dict[tuple[str, str], int]] = {}
    for row in rows:
        verdict = str(row["verdict"])
        method = row["method"]
        country = row["country"] or UNKNOWN_COUNTRY
        asn = UNKNOWN_ASN if row["asn"] is None else int(row["asn"])
        platform = str(row["platform"])
        started = epoch(row["started_at"])
        slot = 1 + VERDICTS.index(verdict)
        failed = verdict in FAILURES
        fam = family(verdict, method) if failed else ""
        for grain, seconds in _GRAIN_SECONDS:
            key: CellKey = (grain, started - started % seconds, platform, country, asn)
            counts = added.get(key)
            if counts is None:
                counts = added[key] = [0] * 8
            counts[0] += 1
            counts[slot] += 1
            if method:
                mkey = (*key, str(method))
                methods[mkey] = methods.get(mkey, 0) + 1
                if method == LOCAL_OUTAGE:
                    counts[_LOCAL] += 1
                pair = (verdict, str(method))
                chosen = run_methods.setdefault(key, {})
                chosen[pair] = chosen.get(pair, 0) + 1
            presence.add((*key, ""))
            if failed:
                counts[_FAILED] += 1
                presence.add((*key, fam))
    if not added:
        return
    new = _add_presence(conn, sorted(presence), key_id)
    ballots = {key: ballot(counts, run_methods.get(key, {})) for key, counts in added.items()}
    cells, voters = _vote(conn, added, ballots, key_id)
    params = [
        {
            **_key_dict(key),
            **dict(zip(_COUNTS, counts, strict=False)),
            "last_digest": digest,
            "failure_digest": digest if counts[_FAILED] else None,
        }
        for key, counts in sorted(cells.items())
    ]
    if networks:
        after = conn.execute(_statement(conn, "cells_returning"), params).all()
        _update_networks(conn, cells, voters, methods, after)
    else:
        conn.execute(_statement(conn, "cells"), params)
    if methods:
        conn.execute(
            _statement(conn, "methods"),
            [{**_key_dict(k[:5]), "method": k[5], "count": n} for k, n in sorted(methods.items())],
        )
    _confirm(conn, sorted(p for p in new if p[0] == "hour" and p[5]))


def ballot(counts: Sequence[int], methods: Mapping[tuple[str, str], int]) -> list[int]:
    """The bundle's run in one cell as a key's tally: one for its verdict, one if local outage.

    ``counts`` are the cell's additions (measurements, the five verdicts, ...); the run's verdict
    is the worst seen (``collectors.runs.run_verdict``), its method the most frequent of that
    verdict, as the ``report_runs`` row of the bundle says for the platform.
    """
    verdict = run_verdict(dict(zip(VERDICTS, counts[1:6], strict=True)))
    chosen = [(n, m) for (v, m), n in methods.items() if v == verdict]
    method = min(chosen, key=lambda nm: (-nm[0], nm[1]))[1] if chosen else None
    tally = [0] * 6
    tally[VERDICTS.index(verdict)] = 1
    tally[5] = int(method == LOCAL_OUTAGE)
    return tally


def _vote(
    conn: Connection,
    added: Mapping[CellKey, list[int]],
    ballots: Mapping[CellKey, list[int]],
    key_id: str,
) -> tuple[dict[CellKey, list[int]], dict[CellKey, tuple[int, int]]]:
    """Add the bundle's runs to the key's tallies per cell; the change to each cell's counts.

    A key's tally in a cell counts its runs there by verdict (``ballot``), so its vote is the
    majority of its runs' verdicts. Returns, per cell, the rows to add to ``report_cells``
    (measurements, new probe, the five vote counts, failed measurements) and the change in
    (votes, local-outage votes).
    """
    params = [
        {
            **_key_dict(key),
            "key_id": key_id,
            **dict(zip(VERDICTS, ballots[key][:5], strict=True)),
            "outage_local": ballots[key][5],
        }
        for key in sorted(added)
    ]
    cells: dict[CellKey, list[int]] = {}
    voters: dict[CellKey, tuple[int, int]] = {}
    for grain, bucket, platform, country, asn, *after in conn.execute(
        _statement(conn, "votes"), params
    ):
        key = (grain, bucket, platform, country, asn)
        mine, tally = added[key], ballots[key]
        before = [a - b for a, b in zip(after[:5], tally[:5], strict=True)]
        was, now = vote_of(before), vote_of(after[:5])
        assert now is not None  # the key has at least this bundle's measurements here
        change = [mine[0], int(was is None), 0, 0, 0, 0, 0, mine[_FAILED]]
        if was is not None:
            change[2 + was] -= 1
        change[2 + now] += 1
        cells[key] = change
        local_before = was is not None and local_outage_vote(before, after[5] - tally[5])
        voters[key] = (int(was is None), local_outage_vote(after[:5], after[5]) - local_before)
    return cells, voters


def _update_networks(
    conn: Connection,
    cells: Mapping[CellKey, list[int]],
    voters: Mapping[CellKey, tuple[int, int]],
    methods: Mapping[tuple[str, int, str, str, int, str], int],
    after: Sequence[Sequence[Any]],
) -> None:
    """Add the bundle's cells to their networks' rows, from each cell's counts before and after.

    ``after`` holds each upserted cell's key, measurements, probes and failing votes once
    updated; the counts before are those minus this bundle's change, so a cell is new when it had
    no measurements, and its failing majority of votes may have come or gone (``report_failing``
    follows).
    """
    delta: dict[tuple[str, int, str, int], list[int]] = {}
    fail: list[dict[str, Any]] = []
    unfail: list[dict[str, Any]] = []
    for grain, bucket, platform, country, asn, measured, probes, failures in after:
        key = (grain, bucket, platform, country, asn)
        change = cells[key]
        before_m, before_p = measured - change[0], probes - change[1]
        before_f = failures - sum(change[3:6])
        was = before_p > 0 and 2 * before_f > before_p
        now = 2 * failures > probes
        row = delta.setdefault((grain, bucket, country, asn), [0, 0, 0, 0, 0, 0])
        row[0] += change[0]
        row[2] += before_m == 0
        row[3] += now - was
        row[4] += voters[key][0]
        row[5] += voters[key][1]
        if now and not was:
            fail.append(_key_dict(key))
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
                **dict(zip(_NETWORK_COUNTS, v, strict=True)),
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
    """Record a confirmation where this bundle makes a second probe agree within the hour.

    The agreeing keys must hold two distinct ``probes.voucher`` values: keys enrolled with one
    token (or under the open policy) count once, however many there are (docs/threat-model.md).
    """
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
            func.sum(c.probes).label("votes"),
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
        w.votes,
        literal(0),
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
    conn.execute(insert(report_networks).from_select([*names, "failing", *_VOTES], query))
    _count_local_votes(conn)
    conn.execute(delete(report_failing))
    conn.execute(
        insert(report_failing).from_select(
            _KEY, select(c.grain, c.bucket, c.platform, c.country, c.asn).where(failing_cell())
        )
    )
    return int(conn.execute(select(func.count()).select_from(report_networks)).scalar_one())


_VOTES = ("votes", "local_votes")


def _count_local_votes(conn: Connection) -> None:
    """Set ``report_networks.local_votes`` from the keys' counts (``report_votes``)."""
    v = report_votes.c
    local: dict[tuple[str, int, str, int], int] = {}
    rows = conn.execute(
        select(
            v.grain, v.bucket, v.country, v.asn, *(v[n] for n in VERDICTS), v.outage_local
        ).where(v.outage > 0)
    )
    for grain, bucket, country, asn, *counts in rows:
        if local_outage_vote(counts[:5], counts[5]):
            key = (grain, bucket, country, asn)
            local[key] = local.get(key, 0) + 1
    if local:
        n = report_networks.c
        conn.execute(
            update(report_networks)
            .where(
                n.grain == bindparam("g"),
                n.bucket == bindparam("b"),
                n.country == bindparam("c"),
                n.asn == bindparam("a"),
            )
            .values(local_votes=bindparam("n")),
            [{"g": k[0], "b": k[1], "c": k[2], "a": k[3], "n": x} for k, x in local.items()],
        )


def backfill(conn: Connection, chunk: int = 5000, *, only: Any = None) -> int:
    """Add stored measurements of keys in good standing to the rollups; returns the count.

    One bundle at a time, as ingest would; measurements of revoked keys are left out. ``only``
    (a clause over ``measurements``) restricts the rows (a recomputation after a revocation).
    ``report_networks`` is not touched: ``rebuild_networks`` derives it afterwards.
    """
    from collectors.schema import bundles, measurements, probes  # the collector's tables

    m = measurements.c
    query = (
        select(m.bundle_digest, bundles.c.key_id, m.platform, m.country, m.asn, m.verdict)
        .add_columns(m.method, m.started_at)
        .join(bundles, bundles.c.digest == m.bundle_digest)
        .join(probes, probes.c.key_id == bundles.c.key_id)
        .where(probes.c.revoked_at.is_(None))
        .order_by(m.bundle_digest)
    )
    if only is not None:
        query = query.where(only)
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


def forget_key(conn: Connection, key_id: str) -> int:
    """Recompute the rollups without a (just revoked) key; returns the measurements re-added.

    Every day of every series the key voted in is cleared (both grains) and rebuilt from the
    measurements of keys in good standing; the network rollups are derived again.
    """
    from collectors.schema import measurements

    v = report_votes.c
    days = conn.execute(
        select(v.platform, v.country, v.asn, v.bucket)
        .where(v.grain == "day", v.key_id == key_id)
        .distinct()
    ).all()
    if not days:
        return 0
    m = measurements.c
    wanted = []
    for platform, country, asn, day in days:
        for table in TABLES:
            t = table.c
            conn.execute(
                delete(table).where(
                    t.platform == platform,
                    t.country == country,
                    t.asn == asn,
                    t.bucket >= day,
                    t.bucket < day + SECONDS["day"],
                )
            )
        wanted.append(
            and_(
                m.platform == platform,
                func.coalesce(m.country, UNKNOWN_COUNTRY) == country,
                func.coalesce(m.asn, UNKNOWN_ASN) == asn,
                m.started_at >= datetime.fromtimestamp(day, UTC),
                m.started_at < datetime.fromtimestamp(day + SECONDS["day"], UTC),
            )
        )
    total = sum(backfill(conn, only=clause) for clause in wanted)
    rebuild_networks(conn)
    return total
