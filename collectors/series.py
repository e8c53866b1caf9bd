"""Runs per series and time bucket (``report_series``), kept at ingest for the dashboard.

One row per grain (``5min``, ``hour`` or ``3h``: v10), bucket (its start, epoch seconds), network
(country, ASN) and platform, summing that series' runs (``collectors.runs``) whose first
measurement falls in the bucket: how many, how many by verdict among the runs that reached the
Internet, how many saw the network itself down (``outage.local``), the first and last failing
measurement and the first and last reachable run (the measurements' own times, fractions kept),
and the probe's network label. A timeline over any window of whole 5-minute buckets reads these
rows instead of the runs.

``record_series`` adds one bundle's runs inside the ingest transaction (one executemany upsert);
``backfill_series`` rebuilds the table from ``report_runs`` (the migration, the bulk loader);
``rebuild_series`` recomputes the buckets a revoked key had runs in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from collectors.runs import FAILING, report_runs
from probe.model.verdict import VERDICTS

metadata = MetaData()

SeriesGrain = Literal["5min", "hour", "3h"]
WIDTHS: dict[SeriesGrain, int] = {"5min": 300, "hour": 3600, "3h": 3 * 3600}  # 3h: v10
WIDEST = max(WIDTHS.values())  # a revocation recomputes whole buckets of this width

report_series = Table(
    "report_series",
    metadata,
    Column("grain", String(4), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("runs", Integer, nullable=False),
    # runs by verdict, of those that did not see the network down
    *(Column(name, Integer, nullable=False) for name in VERDICTS),
    Column("network_down", Integer, nullable=False),  # runs whose method is outage.local
    Column("first_failure", Float),  # failing runs' first and last failing measurement
    Column("last_failure", Float),
    Column("first_good", Float),  # reachable runs' first and last start
    Column("last_good", Float),
    Column("label", Text),  # the probe's vantage.network label (the latest stored)
)

_KEY = ("grain", "bucket", "country", "asn", "platform")
_COUNTS = ("runs", *VERDICTS, "network_down")
_LOW = ("first_failure", "first_good")
_HIGH = ("last_failure", "last_good")

SeriesKey = tuple[str, int, str, int, str]  # grain, bucket, country, asn, platform


def create_series_table(conn: Connection) -> None:
    """Create ``report_series``; its key reads as (grain, bucket, ...) and an index by network."""
    metadata.create_all(conn)
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_series_network"
        " ON report_series (grain, country, asn, bucket)"
    )


def _row(run: Mapping[str, Any]) -> list[Any]:
    """One run's contribution: the counts, then the four times and the label."""
    down = int(run["network_down"])
    verdict = str(run["verdict"])
    counts = [1, *(int(not down and verdict == v) for v in VERDICTS), down]
    failing = not down and verdict in FAILING
    good = not down and verdict == "reachable"
    started = float(run["started"])
    first = run["first_failure"] if failing else None
    last = run["last_failure"] if failing else None
    good_at = started if good else None
    return [*counts, first, last, good_at, good_at, run["label"]]


def _merge(into: list[Any], add: Sequence[Any]) -> None:
    n = len(_COUNTS)
    for i in range(n):
        into[i] += add[i]
    for i in (n, n + 2):  # lows
        if add[i] is not None and (into[i] is None or add[i] < into[i]):
            into[i] = add[i]
    for i in (n + 1, n + 3):  # highs
        if add[i] is not None and (into[i] is None or add[i] > into[i]):
            into[i] = add[i]
    if add[n + 4] is not None:
        into[n + 4] = add[n + 4]


def series_rows(runs: Iterable[Mapping[str, Any]]) -> dict[SeriesKey, list[Any]]:
    """The ``report_series`` additions of some runs (``report_runs`` rows), per key."""
    found: dict[SeriesKey, list[Any]] = {}
    for run in runs:
        started = float(run["started"])
        add = _row(run)
        for grain, width in WIDTHS.items():
            whole = int(started // width) * width
            key = (grain, whole, str(run["country"]), int(run["asn"]), str(run["platform"]))
            row = found.get(key)
            if row is None:
                found[key] = list(add)
            else:
                _merge(row, add)
    return found


def merge_rows(into: dict[SeriesKey, list[Any]], found: Mapping[SeriesKey, Sequence[Any]]) -> None:
    """Add ``series_rows`` additions to ``into`` as the ingest upsert adds them to the table."""
    for key, add in found.items():
        row = into.get(key)
        if row is None:
            into[key] = list(add)
        else:
            _merge(row, add)


def table_rows(found: Mapping[SeriesKey, Sequence[Any]]) -> list[tuple[Any, ...]]:
    """``report_series`` rows, in the table's column order."""
    return [(*key, *row) for key, row in sorted(found.items())]


def _params(found: Mapping[SeriesKey, Sequence[Any]]) -> list[dict[str, Any]]:
    names = (*_COUNTS, "first_failure", "last_failure", "first_good", "last_good", "label")
    return [
        {**dict(zip(_KEY, key, strict=True)), **dict(zip(names, row, strict=True))}
        for key, row in sorted(found.items())
    ]


def _lower(old: Any, new: Any) -> Any:
    return case((new.is_(None), old), (old.is_(None), new), (new < old, new), else_=old)


def _higher(old: Any, new: Any) -> Any:
    return case((new.is_(None), old), (old.is_(None), new), (new > old, new), else_=old)


_UPSERTS: dict[str, Any] = {}


def _upsert(conn: Connection) -> Any:
    dialect = conn.dialect.name
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        base = (postgresql if dialect == "postgresql" else sqlite).insert(report_series)
        s, new = report_series.c, base.excluded
        stmt = _UPSERTS[dialect] = base.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={
                **{name: s[name] + new[name] for name in _COUNTS},
                **{name: _lower(s[name], new[name]) for name in _LOW},
                **{name: _higher(s[name], new[name]) for name in _HIGH},
                "label": case((new.label.is_(None), s.label), else_=new.label),
            },
        )
    return stmt


def record_series(conn: Connection, runs: Sequence[Mapping[str, Any]]) -> None:
    """Add one bundle's runs (``collectors.runs.run_rows``) inside the ingest transaction."""
    if runs:
        conn.execute(_upsert(conn), _params(series_rows(runs)))


_RUN_FIELDS = (
    report_runs.c.country,
    report_runs.c.asn,
    report_runs.c.platform,
    report_runs.c.started,
    report_runs.c.verdict,
    report_runs.c.network_down,
    report_runs.c.first_failure,
    report_runs.c.last_failure,
    report_runs.c.label,
)


def backfill_series(conn: Connection, chunk: int = 20_000) -> int:
    """Rebuild ``report_series`` from ``report_runs`` (in arrival order); returns its rows."""
    conn.execute(delete(report_series))
    return _fill(conn, select(*_RUN_FIELDS), chunk)


def _fill(conn: Connection, query: Any, chunk: int) -> int:
    """Insert the rows of the runs ``query`` selects, added in the order ingest stored them."""
    from collectors.schema import bundles  # the labels: the latest stored wins

    found: dict[SeriesKey, list[Any]] = {}
    names = [c.name for c in _RUN_FIELDS]
    ordered = query.join(bundles, bundles.c.digest == report_runs.c.bundle_digest).order_by(
        bundles.c.log_index, report_runs.c.platform
    )
    rows = conn.execute(ordered).yield_per(chunk)
    for batch in rows.partitions():
        merge_rows(found, series_rows(dict(zip(names, row, strict=True)) for row in batch))
    params = _params(found)
    for start in range(0, len(params), chunk):
        conn.execute(insert(report_series), params[start : start + chunk])
    return len(params)


def key_series(conn: Connection, key_id: str) -> list[tuple[str, int, str, int]]:
    """The widest buckets (country, asn, platform, start) in which ``key_id`` has runs."""
    r = report_runs.c
    width = WIDEST
    hours = {
        (country, int(asn), platform, int(started // width) * width)
        for country, asn, platform, started in conn.execute(
            select(r.country, r.asn, r.platform, r.started).where(r.key_id == key_id)
        )
    }
    return sorted(hours)


def rebuild_series(conn: Connection, hours: Sequence[tuple[str, int, str, int]]) -> int:
    """Recompute the rows of these (country, asn, platform, widest bucket) from ``report_runs``."""
    if not hours:
        return 0
    s, r = report_series.c, report_runs.c
    width = WIDEST
    for start in range(0, len(hours), 500):
        part = hours[start : start + 500]
        conn.execute(
            delete(report_series).where(
                or_(
                    *(
                        and_(
                            s.country == cc,
                            s.asn == asn,
                            s.platform == platform,
                            s.bucket >= hour,
                            s.bucket < hour + width,
                        )
                        for cc, asn, platform, hour in part
                    )
                )
            )
        )
        wanted = or_(
            *(
                and_(
                    r.country == cc,
                    r.asn == asn,
                    r.platform == platform,
                    r.started >= hour,
                    r.started < hour + width,
                )
                for cc, asn, platform, hour in part
            )
        )
        _fill(conn, select(*_RUN_FIELDS).where(wanted), 20_000)
    return len(hours)
