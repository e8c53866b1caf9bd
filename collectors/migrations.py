"""Versioned schema migrations: ordered functions, the applied version in ``schema_version``.

``migrate`` runs the missing steps in one transaction, under a lock (a PostgreSQL advisory lock,
SQLite's write lock), so several collector processes starting together migrate once. Append new
steps to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, insert, inspect, select, update

from collectors import schema
from collectors.db import write_transaction

_LOCK_ID = 0x62_70_63_6F_6C_6C  # "bpcoll": the advisory lock that serialises migrations


def _v1_baseline(conn: Connection) -> None:
    """Probes, bundles, measurements and the transparency log."""
    tables = [schema.probes, schema.bundles, schema.measurements, schema.log_head, schema.log_nodes]
    schema.metadata.create_all(conn, tables=tables)
    conn.execute(insert(schema.log_head).values(id=1, size=0))


def _v2_report_indexes(conn: Connection) -> None:
    """Indexes for reports: by platform and time, by network."""
    conn.exec_driver_sql(
        "CREATE INDEX measurements_platform_time ON measurements (platform, started_at)"
    )
    conn.exec_driver_sql(
        "CREATE INDEX measurements_network ON measurements (country, asn, platform)"
    )


def _v3_report_rollups(conn: Connection) -> None:
    """Report rollups, maintained at ingest (v5 fills them from the measurements)."""
    from collectors.rollup_tables import create_rollup_tables

    create_rollup_tables(conn)


def _v4_report_networks(conn: Connection) -> None:
    """Network rollup (outage checks) and the failing cells (incidents); v5 fills them."""
    from collectors.rollup_tables import create_network_rollup

    create_network_rollup(conn)


def _v5_binding_and_votes(conn: Connection) -> None:
    """Keys bound to a network and vouched for; shared rate limits; rollups with one vote per key.

    Keys enrolled before v5 are bound to the network of their first stored measurement and count
    as approved, each its own voucher. The rollups are rebuilt from the measurements.
    """
    from collectors.rollup import backfill, rebuild_networks
    from collectors.rollup_tables import (
        create_network_rollup,
        create_rollup_tables,
        drop_rollup_tables,
    )

    present = {c["name"] for c in inspect(conn).get_columns("probes")}
    for name, kind in [
        ("country", "VARCHAR(2)"),
        ("asn", "BIGINT"),
        ("voucher", "VARCHAR(100)"),
        ("approved_at", "TIMESTAMP WITH TIME ZONE"),
    ]:
        if name not in present:
            conn.exec_driver_sql(f"ALTER TABLE probes ADD COLUMN {name} {kind}")
    conn.exec_driver_sql(
        "UPDATE probes SET approved_at = enrolled_at, voucher = 'approval:' || key_id,"
        " country = (SELECT m.country FROM measurements m JOIN bundles b"
        "  ON b.digest = m.bundle_digest WHERE b.key_id = probes.key_id LIMIT 1),"
        " asn = (SELECT m.asn FROM measurements m JOIN bundles b"
        "  ON b.digest = m.bundle_digest WHERE b.key_id = probes.key_id LIMIT 1)"
        " WHERE voucher IS NULL"
    )
    schema.metadata.create_all(conn, tables=[schema.rate_buckets])
    drop_rollup_tables(conn)
    create_rollup_tables(conn)
    create_network_rollup(conn)
    backfill(conn)
    rebuild_networks(conn)


def _v6_report_runs(conn: Connection) -> None:
    """Runs (one probe's bundle, one platform) for incidents at the measurements' own times."""
    from collectors.runs import backfill_runs, create_runs_table

    create_runs_table(conn)
    backfill_runs(conn)


def _v7_votes_from_runs(conn: Connection) -> None:
    """A key's vote in a cell counts its runs (the probe's verdict per platform), not measurements.

    The rollups are rebuilt from the measurements; ``report_runs`` gains its verdict index.
    """
    from collectors.rollup import backfill, rebuild_networks
    from collectors.rollup_tables import (
        create_network_rollup,
        create_rollup_tables,
        drop_rollup_tables,
    )
    from collectors.runs import create_runs_table

    drop_rollup_tables(conn)
    create_rollup_tables(conn)
    create_network_rollup(conn)
    backfill(conn)
    rebuild_networks(conn)
    create_runs_table(conn)


def _v8_report_series(conn: Connection) -> None:
    """Runs per series and 5-minute (and hour) bucket, for timelines, filled from the runs;
    indexes that name the series with failing runs, and the runs that saw their network down."""
    from collectors.runs import index_failing_runs
    from collectors.series import backfill_series, create_series_table

    index_failing_runs(conn)
    create_series_table(conn)
    backfill_series(conn)


def _v9_quiet_runs(conn: Connection) -> None:
    """Quiet levels of the failing runs (lone failures incidents need not read around)."""
    from collectors.quiet import mark_quiet
    from collectors.runs import index_quiet_runs

    index_quiet_runs(conn)
    mark_quiet(conn)


def _v10_series_3h(conn: Connection) -> None:
    """``report_series`` gains 3-hour buckets (a month's dashboard): rebuilt from the runs."""
    from collectors.series import backfill_series

    backfill_series(conn)


def _v11_probe_keys(conn: Connection) -> None:
    """An index of the keys that measured, by time, for the dashboard."""
    from collectors.rollup_tables import index_probe_keys

    index_probe_keys(conn)


def _v12_network_series(conn: Connection) -> None:
    """Every platform of a network per series bucket (timelines), derived from the series."""
    from collectors.network_series import backfill_network_series, create_network_series

    create_network_series(conn)
    backfill_network_series(conn)


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_baseline,
    _v2_report_indexes,
    _v3_report_rollups,
    _v4_report_networks,
    _v5_binding_and_votes,
    _v6_report_runs,
    _v7_votes_from_runs,
    _v8_report_series,
    _v9_quiet_runs,
    _v10_series_3h,
    _v11_probe_keys,
    _v12_network_series,
]


def current_version(conn: Connection) -> int:
    schema.schema_version.create(conn, checkfirst=True)
    return conn.execute(select(schema.schema_version.c.version)).scalar() or 0


def migrate(engine: Engine) -> int:
    """Bring the database to the latest version; returns it."""
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        version = current_version(conn)
        if version > len(MIGRATIONS):
            raise RuntimeError(f"database schema v{version} is newer than this collector")
        for step in MIGRATIONS[version:]:
            step(conn)
        target = len(MIGRATIONS)
        if version == 0:
            conn.execute(insert(schema.schema_version).values(id=1, version=target))
        elif version != target:
            conn.execute(update(schema.schema_version).values(version=target))
    return target
