"""Report latency over millions of stored measurements, ingest rate with rollups, dashboard load.

Bulk-loads synthetic measurements (``bench/reports_data.py``: the tables ingest would leave, a
test checks they equal ingest's) into a migrated collector database, SQLite in /tmp or a
PostgreSQL schema of its own, then times the reachability and incidents reports and the
dashboard (in-process and through the app), several runs each (median and p95); and ingest of
signed bundles through ``Ingestor`` with the rollups on.

    .venv/bin/python bench/bench_reports.py --measurements 1000000 [--keep DIR]
    .venv/bin/python bench/bench_reports.py --measurements 10000000 \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test [--schema NAME] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reports_data import PROBES_PER_NETWORK, START, Shape, bulk_load, generate, key_of
from collectors.config import CollectorSettings
from collectors.db import make_engine
from collectors.ingest import Ingestor
from collectors.metrics import Metrics
from collectors.migrations import migrate
from collectors.ratelimit import RateLimiter
from collectors.schema import measurements
from collectors.store import Store
from probe.evidence.bundle import build, seal
from reports.app import create_app
from reports.dashboard import render
from reports.incidents import incidents
from reports.model import ReportQuery
from reports.query import reachability
from tests.collectors.factories import make_key, make_measurement

PER_BUNDLE = 50


def load(engine: Engine, shape: Shape) -> None:
    """Migrate, then bulk-load ``shape``; prints how."""
    began = time.perf_counter()
    migrate(engine)
    keys = {
        key_of(asn, p): (cc, asn) for cc, asn in shape.networks() for p in range(PROBES_PER_NETWORK)
    }
    loaded = bulk_load(engine, generate(shape), keys)
    took = time.perf_counter() - began
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    how = "COPY" if engine.dialect.name == "postgresql" else "executemany"
    print(
        f"loaded by the bulk loader ({how}; not through ingest): {loaded.measurements:,}"
        f" measurements, {loaded.bundles:,} bundles, {loaded.runs:,} runs over {shape.days} days,"
        f" {len(shape.networks())} networks x {PROBES_PER_NETWORK} probes, in {took:.0f} s"
        f" (analyze {time.perf_counter() - began - took:.0f} s); phases (s from start):"
        f" {', '.join(f'{k} {v:.0f}' for k, v in loaded.phases.items())}"
    )


def timed(label: str, fn: Callable[[], int], runs: int = 7) -> None:
    times, size = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        size = fn()
        times.append(time.perf_counter() - began)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"{label:<44} {statistics.median(times) * 1000:8.1f} ms median {p95 * 1000:8.1f} ms p95"
        f"  ({times[0] * 1000:.1f}-{times[-1] * 1000:.1f}, {runs} runs), {size} items",
        flush=True,
    )


def bench_queries(engine: Engine, url: str, shape: Shape, runs: int) -> None:
    end = START + timedelta(days=shape.days)

    def q(**kw: object) -> ReportQuery:
        return ReportQuery.model_validate({"until": end, **kw})

    def run(fn: Callable[..., Sequence[object]], query: ReportQuery) -> Callable[[], int]:
        def go() -> int:
            with engine.connect() as conn:
                return len(fn(conn, query))

        return go

    def page(hours: int) -> Callable[[], int]:
        def go() -> int:
            with engine.connect() as conn:
                return len(render(conn, hours=hours))

        return go

    w30, w7 = end - timedelta(days=30), end - timedelta(days=7)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    timed("reachability day, all, 30 days", run(reachability, q(since=w30, bucket="day")), runs)
    timed(
        "reachability hour, x, PK, 7 days",
        run(reachability, q(since=w7, platform="x", country="PK")),
        runs,
    )
    timed(
        "reachability hour, all, 2 days", run(reachability, q(since=end - timedelta(days=2))), runs
    )
    for platform in ("x", "youtube", "signal"):
        timed(
            f"incidents, {platform}, 30 days", run(incidents, q(since=w30, platform=platform)), runs
        )
    timed("incidents, all, 30 days", run(incidents, q(since=w30)), runs)
    timed("incidents, all, 7 days", run(incidents, q(since=w7)), runs)
    timed("incidents, all, 2 days", run(incidents, q(since=end - timedelta(days=2))), runs)
    timed("dashboard 48 h, all networks (bytes)", page(48), runs)
    timed("dashboard 30 days, all networks (bytes)", page(24 * shape.days), runs)

    app = create_app(CollectorSettings(data_dir=Path(tempfile.gettempdir()), database_url=url))

    async def served() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            r = await client.get("/dashboard")
            r.raise_for_status()
            return len(r.content)

    timed("dashboard 48 h served by the app (bytes)", lambda: asyncio.run(served()), runs)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)


def bench_ingest(bundles: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bp-bench-ingest-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/c.db")
        migrate(engine)
        store = Store(engine)
        ingestor = Ingestor(store, RateLimiter(1e9, 10**9), Metrics())
        keys = [make_key(64500 + i) for i in range(4)]
        for key in keys:
            raw = key.public_key.public_bytes_raw()
            store.enroll(key.key_id, raw, network=("PK", key.asn), voucher=f"token:{key.key_id}")
        payloads = []
        for i in range(bundles):
            key = keys[i % 4]
            ms = [make_measurement(i * PER_BUNDLE + j, asn=key.asn) for j in range(PER_BUNDLE)]
            payloads.append(seal(build(ms, key, country="PK"), key).to_bytes())
        began = time.perf_counter()
        for body in payloads:
            assert ingestor.submit(body).status == 201
        took = time.perf_counter() - began
        n = bundles * PER_BUNDLE
        print(
            f"ingest with rollups (SQLite, {bundles} bundles x {PER_BUNDLE}): "
            f"{n / took:,.0f} measurements/s, {bundles / took:,.0f} bundles/s"
        )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--keep", type=Path, help="SQLite: reuse/keep the database in this directory."
    )
    parser.add_argument("--postgres", help="A PostgreSQL URL: load into a schema of its own there.")
    parser.add_argument("--schema", help="PostgreSQL: the schema's name (default: a new one).")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: the schema is loaded.")
    parser.add_argument("--drop", action="store_true", help="PostgreSQL: drop the schema after.")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ingest-bundles", type=int, default=0)
    args = parser.parse_args()
    if args.ingest_bundles:
        bench_ingest(args.ingest_bundles)
    shape = Shape(args.measurements, days=args.days)
    if args.postgres:
        schema = args.schema or f"bp_bench_{args.measurements // 1_000_000}m_{os.getpid()}"
        admin = create_engine(args.postgres)
        if not args.reuse:
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{args.postgres}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        if not args.reuse:
            load(engine, shape)
        print(f"PostgreSQL schema {schema}")
    else:
        directory = args.keep or Path(tempfile.mkdtemp(prefix="bp-bench-reports-", dir="/tmp"))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "collector.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        if not path.exists() or path.stat().st_size == 0:
            load(engine, shape)
        print(f"SQLite database {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(measurements)).scalar_one()
    print(f"{stored:,} measurements stored")
    bench_queries(engine, url, shape, args.runs)
    engine.dispose()
    if args.postgres and args.drop:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    main()
