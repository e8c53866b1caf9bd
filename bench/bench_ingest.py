"""Collector ingest throughput with signatures verified: SQLite, and PostgreSQL when reachable.

Prints measurements/s and bundles/s through the ingestion path (body limit, envelope parse,
Ed25519 verify, shared rate limit, bundle schema, time window and network binding, one
transaction per bundle with its measurement rows, rollups with one vote per key and log leaf),
once calling the ingestor directly and once through the HTTP app in-process; next to
``openssl speed ed25519``. ``--workers N`` also serves a real collector (``blockprobe collector
serve --workers N``) on 127.0.0.1 and uploads to it over ``--concurrency`` connections.

    .venv/bin/python bench/bench_ingest.py [--bundles 200] [--per-bundle 50] [--no-postgres]
        [--workers 2 --concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: tests' factories too

from collectors.app import create_app
from collectors.config import CollectorSettings
from collectors.ingest import Ingestor
from collectors.limits import SharedRateLimiter
from collectors.metrics import Metrics
from collectors.store import Store
from probe.evidence.bundle import SealedBundle, build, seal
from probe.evidence.keys import ProbeKey
from probe.evidence.signing import b64decode
from probe.evidence.upload import enroll
from tests.collectors.factories import TOKEN, make_key, make_measurement
from tests.collectors.processes import CollectorProcess

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def openssl_verify_rate() -> str:
    try:
        out = subprocess.run(
            ["openssl", "speed", "-seconds", "2", "ed25519"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    match = re.search(r"Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    return f"{float(match.group(2)):,.0f} verify/s" if match else "unparsed"


def python_verify_rate(n: int = 5000) -> float:
    key = make_key()
    message, sig = b"x" * 2000, key.private_key.sign(b"x" * 2000)
    public = key.public_key
    t = time.perf_counter()
    for _ in range(n):
        public.verify(sig, message)
    return n / (time.perf_counter() - t)


def corpus(
    bundles: int, per_bundle: int, keys: int = 8
) -> tuple[list[ProbeKey], list[SealedBundle]]:
    probe_keys = [make_key(64500 + i) for i in range(keys)]
    sealed = []
    for i in range(bundles):
        key = probe_keys[i % keys]
        ms = [make_measurement(i * per_bundle + j, asn=key.asn) for j in range(per_bundle)]
        sealed.append(seal(build(ms, key, country="PK"), key))
    return probe_keys, sealed


@contextmanager
def postgres_url() -> Iterator[str | None]:
    schema = f"bp_bench_{secrets.token_hex(4)}"
    try:
        admin = create_engine(PG, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception:  # not reachable: skip the PostgreSQL run
        yield None
        return
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run(
    label: str, settings: CollectorSettings, keys: list[ProbeKey], sealed: list[SealedBundle]
) -> None:
    app = create_app(settings)
    store: Store = app.state.store
    for key in keys:
        raw = b64decode(key.public_key_b64)
        store.enroll(key.key_id, raw, network=("PK", key.asn), voucher=f"token:{key.key_id}")
    limiter = SharedRateLimiter(store.engine, 1e9, 10**9, prefix="bundles:")
    ingestor = Ingestor(store, limiter, Metrics())
    half = len(sealed) // 2
    bodies = [s.to_bytes() for s in sealed]

    t = time.perf_counter()
    for body in bodies[:half]:
        outcome = ingestor.submit(body)
        assert outcome.status == 201, outcome.body
    direct = time.perf_counter() - t

    async def over_http() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            t = time.perf_counter()
            for body in bodies[half:]:
                r = await client.post("/api/v1/bundles", content=body)
                assert r.status_code == 201, r.text
            return time.perf_counter() - t

    http = asyncio.run(over_http())
    n_measure = store.measurement_count()
    per_bundle = n_measure // len(sealed)
    for name, seconds, count in (("direct", direct, half), ("http", http, len(sealed) - half)):
        print(
            f"{label:10} {name:6} {count:5} bundles x {per_bundle} measurements:"
            f" {count * per_bundle / seconds:9,.0f} measurements/s"
            f"  {count / seconds:7,.1f} bundles/s"
        )
    store.engine.dispose()


def served(
    label: str,
    keys: list[ProbeKey],
    sealed: list[SealedBundle],
    workers: int,
    concurrency: int,
    database: str | None,
) -> None:
    """Upload every bundle to ``blockprobe collector serve --workers N`` over real connections."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--workers", str(workers)] + (["--database", database] if database else [])
        collector = CollectorProcess(Path(tmp) / "data", None, *args).wait_ready(60)
        try:

            async def upload() -> float:
                async with httpx.AsyncClient(timeout=120) as client:
                    for key in keys:
                        await enroll(collector.url, key, TOKEN, country="PK", client=client)
                queue = [s.to_bytes() for s in sealed]

                async def worker() -> None:
                    async with httpx.AsyncClient(timeout=120) as client:
                        while queue:
                            body = queue.pop()
                            r = await client.post(f"{collector.url}/api/v1/bundles", content=body)
                            assert r.status_code == 201, r.text

                t = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return time.perf_counter() - t

            seconds = asyncio.run(upload())
        finally:
            collector.stop()
    count = len(sealed)
    per_bundle = len(json.loads(b64decode(sealed[0].envelope.payload))["measurements"])
    print(
        f"{label:10} served {count:5} bundles x {per_bundle} measurements:"
        f" {count * per_bundle / seconds:9,.0f} measurements/s  {count / seconds:7,.1f} bundles/s"
        f"  ({workers} workers, {concurrency} connections)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--per-bundle", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="also serve with N workers")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    print(f"openssl speed ed25519: {openssl_verify_rate()}")
    print(f"python cryptography Ed25519: {python_verify_rate():,.0f} verify/s")
    keys, sealed = corpus(args.bundles, args.per_bundle)
    size = sum(len(s.to_bytes()) for s in sealed) / len(sealed)
    print(f"corpus: {len(sealed)} bundles of {args.per_bundle} measurements, {size:,.0f} B each")
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", CollectorSettings(data_dir=Path(tmp)), keys, sealed)
    if not args.no_postgres:
        with postgres_url() as url, tempfile.TemporaryDirectory() as tmp:
            if url is None:
                print("postgresql not reachable at 127.0.0.1:5432: skipped")
            else:
                run(
                    "postgresql",
                    CollectorSettings(data_dir=Path(tmp), database_url=url),
                    keys,
                    sealed,
                )
    if args.workers:
        served("sqlite", keys, sealed, args.workers, args.concurrency, None)
        if not args.no_postgres:
            with postgres_url() as url:
                if url is not None:
                    served("postgresql", keys, sealed, args.workers, args.concurrency, url)


if __name__ == "__main__":
    main()
