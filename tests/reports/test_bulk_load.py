"""The benchmark's bulk loader leaves the tables ingest leaves (so the benchmark measures them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from bench.reports_data import Shape, bulk_load, generate, key_of
from collectors.db import make_engine
from collectors.migrations import migrate
from collectors.network_series import report_network_series
from collectors.rollup_tables import ALL_TABLES
from collectors.runs import report_runs
from collectors.schema import bundles as bundle_table
from collectors.schema import log_head, log_nodes, measurements, probes
from collectors.series import report_series
from collectors.store import Store

SHAPE = Shape(measurements=2000, days=1, networks_per_country=1)
SKIP = {"id", "enrolled_at", "approved_at", "received_at"}  # ingest's clock, the row number


def tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    every = [probes, bundle_table, measurements, log_head, log_nodes, report_runs, report_series]
    every.append(report_network_series)
    with engine.connect() as conn:
        for table in [*every, *ALL_TABLES]:
            columns = [c for c in table.columns if c.name not in SKIP]
            rows = conn.execute(select(*columns)).all()
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


def test_bulk_load_equals_ingest(engine: Engine, tmp_path: Any) -> None:
    keys = {key_of(asn, p): (cc, asn) for cc, asn in SHAPE.networks() for p in range(2)}
    store = Store(engine)
    for key_id, network in keys.items():
        store.enroll(key_id, bytes(32), network=network, voucher=f"token:{key_id}")
    for digest, key_id, rows in generate(SHAPE):
        store.add_bundle(digest, key_id, b"{}", rows)
    ingested = tables(engine)
    other = make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    if engine.dialect.name == "postgresql":  # load into a second schema of the same server
        other = engine
        with engine.begin() as conn:
            for name in reversed(list(ingested)):
                conn.exec_driver_sql(f"DELETE FROM {name}")
            conn.exec_driver_sql("INSERT INTO log_head (id, size) VALUES (1, 0)")
    else:
        migrate(other)
    loaded = bulk_load(other, generate(SHAPE), keys)
    assert loaded.measurements == sum(1 for _ in ingested["measurements"])
    bulk = tables(other)
    assert ingested["report_runs"] and ingested["report_series"] and ingested["report_cells"]
    assert any(row[6] for row in ingested["report_runs"])  # failing runs among them
    assert ingested["report_confirmations"]
    for name, rows in ingested.items():
        assert bulk[name] == rows, name
