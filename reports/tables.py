"""Rollup tables that reports read instead of the measurements: maintained at ingest.

Every table is keyed by ``grain`` (``hour`` or ``day``), ``bucket`` (the bucket's start, integer
seconds since the epoch, UTC) and the cell: platform, country (``ZZ`` when unknown, as OONI does)
and ASN (``0`` when unknown). ``report_cells`` counts verdicts, ``report_methods`` counts methods,
``report_probes`` records which probe keys (one per probe per ASN) were seen, per failure family
(``""``: any measurement; a new key there increments ``report_cells.probes``),
and ``report_confirmations`` the families that two or more probes agreed on in one hour.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, Text

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

TABLES = [report_cells, report_methods, report_probes, report_confirmations]


def create_rollup_tables(conn: Connection) -> None:
    """Create the rollup tables and the index that platform-filtered reports use."""
    metadata.create_all(conn, tables=TABLES)
    conn.exec_driver_sql(
        "CREATE INDEX report_cells_series ON report_cells (grain, platform, country, asn, bucket)"
    )
