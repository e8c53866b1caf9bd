"""Rollup tables that reports read instead of the measurements: maintained at ingest.

Every table is keyed by ``grain`` (``hour`` or ``day``), ``bucket`` (the bucket's start, integer
seconds since the epoch, UTC) and the cell: platform, country (``ZZ`` when unknown, as OONI does)
and ASN (``0`` when unknown). ``report_cells`` counts verdicts, ``report_methods`` counts methods,
``report_probes`` records which probe keys (one per probe per ASN) were seen, per failure family
(``""``: any measurement; a new key there increments ``report_cells.probes``),
and ``report_confirmations`` the families that two or more probes agreed on in one hour.

``report_networks`` (migration v4) sums each network's cells per bucket, over every platform: the
measurements, the ``outage.local`` ones, how many platform cells there are and how many of them
have a failing majority, so that a network outage is one row's check; ``report_failing`` keys
the cells that have a failing majority now (incidents start from those: a partial index would do,
but SQLite does not match an arithmetic predicate to one).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    literal_column,
)

metadata = MetaData()

UNKNOWN_COUNTRY = "ZZ"
UNKNOWN_ASN = 0


def _cell_key() -> list[Column[object]]:
    return [
        Column("grain", String(4), primary_key=True),
        Column("bucket", BigInteger, primary_key=True),
        Column("platform", Text, primary_key=True),
        Column("country", String(2), primary_key=True),
        Column("asn", BigInteger, primary_key=True),
    ]


report_cells = Table(
    "report_cells",
    metadata,
    *_cell_key(),
    Column("measurements", Integer, nullable=False),
    Column("probes", Integer, nullable=False),  # distinct probe keys seen in the cell
    Column("reachable", Integer, nullable=False),
    Column("blocked", Integer, nullable=False),
    Column("throttled", Integer, nullable=False),
    Column("outage", Integer, nullable=False),
    Column("inconclusive", Integer, nullable=False),
    Column("last_digest", String(64), nullable=False),  # latest bundle with a measurement here
    Column("failure_digest", String(64)),  # latest bundle with a non-reachable measurement here
)

report_methods = Table(
    "report_methods",
    metadata,
    *_cell_key(),
    Column("method", Text, primary_key=True),
    Column("count", Integer, nullable=False),
)

report_probes = Table(  # series first: it is read per series (incidents, confirmations)
    "report_probes",
    metadata,
    Column("grain", String(4), primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("family", String(16), primary_key=True),  # "" = any measurement; else a failure family
)

report_confirmations = Table(
    "report_confirmations",
    metadata,
    *_cell_key(),
    Column("family", String(16), primary_key=True),
)

report_networks = Table(  # v4: one row per network and bucket, over every platform
    "report_networks",
    metadata,
    Column("grain", String(4), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("measurements", Integer, nullable=False),
    Column("outage_local", Integer, nullable=False),  # measurements with method outage.local
    Column("cells", Integer, nullable=False),  # platforms measured (report_cells rows)
    Column("failing", Integer, nullable=False),  # of those, cells with a failing majority
)

report_failing = Table(  # v4: the report_cells keys with a failing majority
    "report_failing", metadata, *_cell_key()
)

TABLES = [report_cells, report_methods, report_probes, report_confirmations]  # v3
ALL_TABLES = [*TABLES, report_networks, report_failing]


def failing_cell(table: Table = report_cells) -> ColumnElement[bool]:
    """A cell of ``table`` (``report_cells`` or an alias) with a failing majority."""
    c = table.c
    return literal_column("2") * (c.blocked + c.throttled + c.outage) > c.measurements


def create_rollup_tables(conn: Connection) -> None:
    """Create the rollup tables and the index that platform-filtered reports use."""
    metadata.create_all(conn, tables=TABLES)
    conn.exec_driver_sql(
        "CREATE INDEX report_cells_series ON report_cells (grain, platform, country, asn, bucket)"
    )


def create_network_rollup(conn: Connection) -> None:
    """Create ``report_networks`` and ``report_failing`` (v4) if they are missing."""
    metadata.create_all(conn, tables=[report_networks, report_failing])
