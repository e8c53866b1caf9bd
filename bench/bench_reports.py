"""Report latency over millions of stored measurements, ingest rate with rollups, dashboard load.

Bulk-loads synthetic measurements into a migrated SQLite collector database in /tmp (rows,
rollups and runs written directly with executemany, as ingest would have left them), then times the
reachability and incidents reports, the dashboard page through the app in-process, and ingest
of signed bundles through ``Ingestor`` with the rollup hook on.

    .venv/bin/python bench/bench_reports.py --measurements 1000000 [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.config import CollectorSettings
from collectors.db import make_engine
from collectors.ingest import Ingestor
from collectors.metrics import Metrics
from collectors.migrations import migrate
from collectors.ratelimit import RateLimiter
from collectors.rollup import rebuild_networks
from collectors.runs import FAILING, run_verdict
from collectors.store import Store
from probe.evidence.bundle import build, seal
from reports.app import create_app
from reports.incidents import incidents
from reports.model import ReportQuery
from reports.query import reachability
from tests.collectors.factories import make_key, make_measurement

PLATFORMS = ["x", "youtube", "whatsapp", "telegram", "facebook", "instagram", "tiktok", "signal"]
PLATFORMS.append("wikipedia")
COUNTRIES = ["PK", "RU", "IR", "TR", "MM", "EG", "IN", "BR", "DE", "US"]
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 30
PROBES_PER_NETWORK = 2
PER_BUNDLE = 50


def networks() -> list[tuple[str, int]]:
    return [(cc, 64500 + i * 10 + j) for i, cc in enumerate(COUNTRIES) for j in range(6)]


def verdict_for(rng: random.Random, platform: str, net: int, hour: int) -> tuple[str, str | None]:
    """Mostly reachable; x blocked on a few networks for days, throttled on others."""
    if platform == "x" and net % 7 == 0 and 200 <= hour < 400:
        return ("blocked", "tls.reset") if rng.random() < 0.9 else ("reachable", None)
    if platform == "x" and net % 11 == 0 and hour >= 500:
        return ("throttled", "throttle.rate") if rng.random() < 0.8 else ("reachable", None)
    roll = rng.random()
    if roll < 0.01:
        return "outage", "outage.platform"
    if roll < 0.03:
        return "inconclusive", None
    return "reachable", None


def bulk_load(path: Path, total: int) -> float:
    """Write ``total`` measurements and their rollups; returns seconds taken."""
    began = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    rng = random.Random(7)
    nets = networks()
    hours = DAYS * 24
    slots = hours * len(nets) * PROBES_PER_NETWORK * len(PLATFORMS)
    per_slot = total / slots
    keys = {(cc, asn, p): f"{asn:08x}{p:056x}" for cc, asn in nets for p in range(2)}
    db.executemany(
        "INSERT INTO probes (key_id, public_key, enrolled_at) VALUES (?, ?, ?)",
        [(k, b"\0" * 32, "2024-01-01 00:00:00.000000") for k in keys.values()],
    )
    cells: dict[tuple[str, int, str, str, int], Counter[str]] = {}
    methods: Counter[tuple[str, int, str, str, int, str]] = Counter()
    presence: set[tuple[str, str, str, int, int, str, str]] = set()
    digests: dict[tuple[str, int, str, str, int], str] = {}
    runs: dict[tuple[str, str], list[object]] = {}  # (digest, platform): run fields, counts
    written, log_index, carry = 0, 0, 0.0
    batch: list[tuple[object, ...]] = []
    for hour in range(hours):
        moment = START + timedelta(hours=hour)
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S.000000")
        hb, db_ = int(moment.timestamp()), int(moment.timestamp()) // 86400 * 86400
        for cc, asn in nets:
            for p in range(PROBES_PER_NETWORK):
                key_id = keys[(cc, asn, p)]
                digest = f"{hour:08x}{asn:08x}{p:048x}"
                db.execute(
                    "INSERT INTO bundles VALUES (?, ?, ?, ?, ?, ?)",
                    (digest, key_id, stamp, log_index, 0, b"{}"),
                )
                log_index += 1
                for platform in PLATFORMS:
                    carry += per_slot
                    n, carry = int(carry), carry - int(carry)
                    run: list[object] = [cc, asn, key_id, hb, Counter(), Counter()]
                    if n:
                        runs[(digest, platform)] = run
                    for _ in range(n):
                        verdict, method = verdict_for(rng, platform, asn, hour)
                        run[4][verdict] += 1  # type: ignore[index]
                        if method:
                            run[5][(verdict, method)] += 1  # type: ignore[index]
                        batch.append(
                            (digest, "m", platform, "t", "d", cc, asn, verdict, method, stamp, "{}")
                        )
                        for grain, bucket in (("hour", hb), ("day", db_)):
                            key = (grain, bucket, platform, cc, asn)
                            counts = cells.setdefault(key, Counter())
                            counts[verdict] += 1
                            counts["measurements"] += 1
                            digests[key] = digest
                            if method:
                                methods[(*key, method)] += 1
                            presence.add((grain, platform, cc, asn, bucket, key_id, ""))
                            if verdict in ("blocked", "throttled", "outage"):
                                fam = (method or verdict).split(".")[0]
                                presence.add((grain, platform, cc, asn, bucket, key_id, fam))
                    written += n
                if len(batch) > 200_000:
                    _flush(db, batch)
                    batch = []
    _flush(db, batch)
    probes = Counter((g, b, p, cc, a) for g, p, cc, a, b, _k, f in presence if not f)
    agree = Counter((g, b, p, cc, a, f) for g, p, cc, a, b, _k, f in presence if f)
    db.executemany(
        "INSERT INTO report_cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (*k, c["measurements"], probes[k], c["reachable"], c["blocked"], c["throttled"])
            + (c["outage"], c["inconclusive"], digests[k], digests[k])
            for k, c in cells.items()
        ],
    )
    db.executemany(
        "INSERT INTO report_methods VALUES (?,?,?,?,?,?,?)", [(*k, n) for k, n in methods.items()]
    )
    db.executemany("INSERT INTO report_probes VALUES (?,?,?,?,?,?,?)", sorted(presence))
    confirmed = [k for k, n in agree.items() if n >= 2 and k[0] == "hour"]
    rows = set()
    for _g, b, plat, cc, a, f in confirmed:
        rows.add(("hour", b, plat, cc, a, f))
        rows.add(("day", b - b % 86400, plat, cc, a, f))
    db.executemany("INSERT INTO report_confirmations VALUES (?,?,?,?,?,?)", sorted(rows))
    db.executemany(
        "INSERT INTO report_runs (bundle_digest, platform, country, asn, key_id, started, verdict,"
        " method, failing, network_down, measurements, failures, first_failure, last_failure,"
        " kbps, control_kbps, label) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        _run_rows(runs),
    )
    db.execute("UPDATE log_head SET size = ?", (log_index,))
    db.commit()
    db.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        rebuild_networks(conn)  # report_networks, as ingest keeps it
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(
        f"loaded {written:,} measurements, {len(cells):,} cells"
        f" in {time.perf_counter() - began:.0f} s"
    )
    return time.perf_counter() - began


def _run_rows(runs: dict[tuple[str, str], list[object]]) -> list[tuple[object, ...]]:
    """``report_runs`` rows, as ingest makes them (``collectors.runs.run_rows``)."""
    out: list[tuple[object, ...]] = []
    for (digest, platform), (cc, asn, key_id, started, verdicts, methods) in runs.items():
        assert isinstance(verdicts, Counter) and isinstance(methods, Counter)
        verdict = run_verdict(verdicts)
        chosen = [(n, m) for (v, m), n in methods.items() if v == verdict]
        method = min(chosen, key=lambda nm: (-nm[0], nm[1]))[1] if chosen else None
        failures = sum(verdicts[k] for k in FAILING)
        failing = verdict in FAILING
        moment = float(started)  # type: ignore[arg-type]
        out.append(
            (digest, platform, cc, asn, key_id, moment, verdict, method, int(failing))
            + (int(method == "outage.local"), sum(verdicts.values()), failures)
            + (moment if failures else None, moment if failures else None, None, None)
            + (f"net{asn}",)
        )
    return out


def _flush(db: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    db.executemany(
        "INSERT INTO measurements (bundle_digest, measurement_id, platform, target, domain,"
        " country, asn, verdict, method, started_at, body) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        batch,
    )


def timed(label: str, fn: Callable[[], int], runs: int = 5) -> None:
    times, size = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        size = fn()
        times.append(time.perf_counter() - began)
    print(
        f"{label:<58} {statistics.median(times) * 1000:8.1f} ms median"
        f"  ({min(times) * 1000:.1f}-{max(times) * 1000:.1f}), {size} items"
    )


def bench_queries(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    end = START + timedelta(days=DAYS)

    def q(**kw: object) -> ReportQuery:
        return ReportQuery.model_validate({"until": end, **kw})

    def run(fn: Callable[..., Sequence[object]], query: ReportQuery) -> Callable[[], int]:
        def go() -> int:
            with engine.connect() as conn:
                return len(fn(conn, query))

        return go

    w30, w7 = end - timedelta(days=30), end - timedelta(days=7)
    timed("reachability day, all, 30 days", run(reachability, q(since=w30, bucket="day")))
    timed(
        "reachability hour, x, PK, 7 days",
        run(reachability, q(since=w7, platform="x", country="PK")),
    )
    timed("reachability hour, one network, 30 days", run(reachability, q(since=w30, asn=64500)))
    timed("reachability hour, all, 2 days", run(reachability, q(since=end - timedelta(days=2))))
    timed("incidents hour, x, 30 days", run(incidents, q(since=w30, platform="x")))
    timed("incidents hour, all, 7 days", run(incidents, q(since=w7)))
    timed("incidents hour, all, 30 days", run(incidents, q(since=w30)))
    timed("incidents, all, 2 days", run(incidents, q(since=end - timedelta(days=2))))
    engine.dispose()

    app = create_app(CollectorSettings(data_dir=path.parent, database_url=f"sqlite:///{path}"))

    async def page() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            r = await client.get("/dashboard")
            r.raise_for_status()
            return len(r.content)

    timed("dashboard page (48 h, all networks), bytes", lambda: asyncio.run(page()), runs=3)


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
    parser.add_argument("--keep", type=Path, help="Reuse/keep the database in this directory.")
    parser.add_argument("--ingest-bundles", type=int, default=200)
    args = parser.parse_args()
    bench_ingest(args.ingest_bundles)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bp-bench-reports-", dir="/tmp"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "collector.db"
    if not path.exists():
        bulk_load(path, args.measurements)
    size = path.stat().st_size / 2**20
    print(f"database {path} ({size:,.0f} MiB)")
    bench_queries(path)


if __name__ == "__main__":
    main()
