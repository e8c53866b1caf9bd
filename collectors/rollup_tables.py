"""Rollup tables that reports read instead of the measurements: maintained at ingest.

Every table is keyed by ``grain`` (``hour`` or ``day``), ``bucket`` (the bucket's start, integer
seconds since the epoch, UTC) and the cell: platform, country (``ZZ`` when unknown, as OONI does)
and ASN (``0`` when unknown). ``report_cells`` counts verdicts, ``report_methods`` counts methods,
``report_probes`` records which probe keys (one per probe per ASN) were seen, per failure family
(``""``: any measurement; a new key there increments ``report_cells.probes``),
and ``report_confirmations`` the families that two or more probes agreed on in one hour.

One vote per key (migration v5): ``report_votes`` holds each key's verdict counts in each cell; the
key's vote is the majority of its own measurements there (``collectors.votes``), and the verdict
columns of ``report_cells`` count votes, not measurements (they sum to ``probes``). A key that
uploads ten bundles still has one vote.

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
    # the verdict columns count votes: one per key, its majority verdict in the cell (v5)
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

report_votes = Table(  # v5: each key's verdict counts in each cell; its vote is their majority
    "report_votes",
    metadata,
    Column("grain", String(4), primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("reachable", Integer, nullable=False),
    Column("blocked", Integer, nullable=False),
    Column("throttled", Integer, nullable=False),
    Column("outage", Integer, nullable=False),
    Column("inconclusive", Integer, nullable=False),
    Column("outage_local", Integer, nullable=False),  # measurements with method outage.local
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
    Column("votes", Integer, nullable=False),  # v5: votes over every platform cell (key x cell)
    Column("local_votes", Integer, nullable=False),  # v5: of those, votes for a local outage
)

report_failing = Table(  # v4: the report_cells keys with a failing majority
    "report_failing", metadata, *_cell_key()
)

TABLES = [report_cells, report_methods, report_probes, report_confirmations, report_votes]
ALL_TABLES = [*TABLES, report_networks, report_failing]


def failing_cell(table: Table = report_cells) -> ColumnElement[bool]:
    """A cell of ``table`` (``report_cells`` or an alias) with a failing majority of votes."""
    c = table.c
    return literal_column("2") * (c.blocked + c.throttled + c.outage) > c.probes


def create_rollup_tables(conn: Connection) -> None:
    """Create the rollup tables and the index that platform-filtered reports use."""
    metadata.create_all(conn, tables=TABLES)
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_cells_series"
        " ON report_cells (grain, platform, country, asn, bucket)"
    )
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS report_votes_key ON report_votes (key_id)")


def index_probe_keys(conn: Connection) -> None:
    """v11: the keys that measured, by time (``family = ""``): the dashboard's probes per
    country read them index-only over a month."""
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_probes_keys"
        " ON report_probes (grain, bucket, country, asn, platform, key_id) WHERE family = ''"
    )


def drop_rollup_tables(conn: Connection) -> None:
    """Drop every rollup table (v5 rebuilds them with one vote per key)."""
    metadata.drop_all(conn, tables=ALL_TABLES, checkfirst=True)


def create_network_rollup(conn: Connection) -> None:
    """Create ``report_networks`` and ``report_failing`` (v4) if they are missing."""
    metadata.create_all(conn, tables=[report_networks, report_failing])
