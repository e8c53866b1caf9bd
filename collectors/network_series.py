"""Every platform of a network per series bucket (``report_network_series``, v12), for timelines.

One row per grain, bucket and network (country, ASN), derived from that network's
``report_series`` rows (``collectors.series``): the runs and the network-down runs of every
platform, the greatest label, each platform's state (the majority of its runs that reached the
Internet, ``collectors.votes.vote_of``) packed as ``platform=state,...`` in platform order, and
the worst of those states (its index in ``SEVERITY``; NULL when every run saw the network down).
A month's dashboard reads one row per network and bucket instead of one per platform.

``refresh_networks`` derives the rows of some keys again from the series rows (at ingest, after
the bundle's series upsert; after a revocation's rebuild); ``backfill_network_series`` derives
every row (the migration); ``network_rows`` derives them from series rows in the table's column
order (the bulk loader, and the two above).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite

from collectors.series import WIDEST, WIDTHS, report_series
from collectors.votes import vote_of
from probe.model.verdict import SEVERITY, VERDICTS

metadata = MetaData()

report_network_series = Table(
    "report_network_series",
    metadata,
    Column("grain", String(4), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("runs", Integer, nullable=False),
    Column("network_down", Integer, nullable=False),
    Column("label", Text),
    Column("states", Text, nullable=False),  # platform=state,... (platforms with runs up)
    Column("worst", Integer),  # the worst state's index in SEVERITY; NULL: none
)

NetworkKey = tuple[str, int, str, int]  # grain, bucket, country, asn
_SERIES = [c.name for c in report_series.columns]
_AT = {name: i for i, name in enumerate(_SERIES)}


def create_network_series(conn: Connection) -> None:
    metadata.create_all(conn)


def network_rows(series: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The rows of the networks of ``series`` (``report_series`` rows in its column order,
    sorted by its key), in this table's column order."""
    out: list[tuple[Any, ...]] = []
    current: NetworkKey | None = None
    rows: list[Sequence[Any]] = []
    for row in series:
        key = (str(row[0]), int(row[1]), str(row[2]), int(row[3]))
        if key != current:
            if current is not None:
                out.append((*current, *_derive(rows)))
            current, rows = key, []
        rows.append(row)
    if current is not None:
        out.append((*current, *_derive(rows)))
    return out


def _derive(rows: Sequence[Sequence[Any]]) -> tuple[int, int, str | None, str, int | None]:
    runs = down = 0
    labels = []
    states = []
    worst: int | None = None
    for row in rows:
        runs += int(row[_AT["runs"]])
        down += int(row[_AT["network_down"]])
        if row[_AT["label"]] is not None:
            labels.append(str(row[_AT["label"]]))
        if row[_AT["runs"]] > row[_AT["network_down"]]:
            vote = vote_of([int(row[_AT[name]]) for name in VERDICTS])
            assert vote is not None
            state = VERDICTS[vote]
            states.append(f"{row[_AT['platform']]}={state}")
            rank = SEVERITY.index(state)
            worst = rank if worst is None else min(worst, rank)
    return runs, down, max(labels) if labels else None, ",".join(states), worst


def _read(conn: Connection, keys: Sequence[NetworkKey]) -> list[Sequence[Any]]:
    s = report_series.c
    rows: list[Sequence[Any]] = []
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        rows += conn.execute(
            select(report_series).where(tuple_(s.grain, s.bucket, s.country, s.asn).in_(part))
        ).all()
    return sorted(rows, key=lambda row: tuple(row[:5]))


def refresh_networks(conn: Connection, keys: Iterable[NetworkKey]) -> None:
    """Derive the rows of ``keys`` again from their series rows (none: no row).

    At ingest every key has series rows: one read and one upsert.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return
    rows = network_rows(_read(conn, wanted))
    gone = sorted(set(wanted) - {(r[0], r[1], r[2], r[3]) for r in rows})
    n = report_network_series.c
    for start in range(0, len(gone), 500):
        part = gone[start : start + 500]
        conn.execute(
            delete(report_network_series).where(
                tuple_(n.grain, n.bucket, n.country, n.asn).in_(part)
            )
        )
    if rows:
        conn.execute(_upsert(conn), [dict(zip(_NAMES, r, strict=True)) for r in rows])


_NAMES = [c.name for c in report_network_series.columns]


def _upsert(conn: Connection) -> Any:
    base = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        report_network_series
    )
    return base.on_conflict_do_update(
        index_elements=_NAMES[:4], set_={name: base.excluded[name] for name in _NAMES[4:]}
    )


def _insert(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    for start in range(0, len(rows), 20_000):
        part = rows[start : start + 20_000]
        conn.execute(
            insert(report_network_series), [dict(zip(_NAMES, r, strict=True)) for r in part]
        )


def run_keys(runs: Iterable[Mapping[str, Any]]) -> set[NetworkKey]:
    """The keys whose series rows some runs (``report_runs`` rows) add to."""
    keys: set[NetworkKey] = set()
    for run in runs:
        started = float(run["started"])
        for grain, width in WIDTHS.items():
            keys.add((grain, int(started // width) * width, str(run["country"]), int(run["asn"])))
    return keys


def rebuilt_keys(buckets: Iterable[tuple[str, int, str, int]]) -> set[NetworkKey]:
    """The keys of the widest buckets (country, asn, platform, start) a revocation rebuilds."""
    keys: set[NetworkKey] = set()
    for country, asn, _platform, start in buckets:
        for grain, width in WIDTHS.items():
            for bucket in range(start, start + WIDEST, width):
                keys.add((grain, bucket, country, asn))
    return keys


def backfill_network_series(conn: Connection, chunk: int = 20_000) -> int:
    """Derive every row from ``report_series``; returns how many."""
    conn.execute(delete(report_network_series))
    s = report_series.c
    ordered = select(report_series).order_by(s.grain, s.bucket, s.country, s.asn, s.platform)
    rows = network_rows(conn.execute(ordered).yield_per(chunk))
    _insert(conn, rows)
    return len(rows)
