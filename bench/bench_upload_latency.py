"""Upload latency with many probes at once: p50/p90/p99 of `POST /api/v1/bundles`.

    .venv/bin/python bench/bench_upload_latency.py [--probes 200] [--per-bundle 9]

Starts a real collector (uvicorn, SQLite in a temporary directory) on 127.0.0.1, enrols one key
per probe, then every probe uploads one signed bundle at the same moment over its own connection.
Prints the latency percentiles and how many bundles were stored. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: tests' factories too

from probe.evidence.upload import enroll
from tests.collectors.factories import TOKEN, make_key, make_sealed
from tests.collectors.processes import CollectorProcess


async def _upload_all(url: str, probes: int, per_bundle: int) -> tuple[list[float], int]:
    keys = [make_key(asn=64500 + i % 50) for i in range(probes)]
    async with httpx.AsyncClient(timeout=60) as client:
        for key in keys:
            await enroll(url, key, TOKEN, country="PK", client=client)
    sealed = [make_sealed(key, per_bundle, start=i * per_bundle) for i, key in enumerate(keys)]
    start = asyncio.Event()

    async def one(body: bytes) -> tuple[float, int]:
        async with httpx.AsyncClient(timeout=60) as client:  # one connection per probe
            await start.wait()
            t0 = time.perf_counter()
            response = await client.post(
                f"{url}/api/v1/bundles",
                content=body,
                headers={"content-type": "application/json"},
            )
            return time.perf_counter() - t0, response.status_code

    tasks = [asyncio.create_task(one(s.to_bytes())) for s in sealed]
    await asyncio.sleep(0.2)
    start.set()
    done = await asyncio.gather(*tasks)
    return sorted(t for t, _ in done), sum(1 for _, status in done if status == 201)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--per-bundle", type=int, default=9)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        extra = ["--workers", str(args.workers)]
        extra += ["--database", args.database] if args.database else []
        collector = CollectorProcess(data, None, *extra).wait_ready(60)
        try:
            started = time.perf_counter()
            latencies, stored = asyncio.run(
                _upload_all(collector.url, args.probes, args.per_bundle)
            )
            wall = time.perf_counter() - started
        finally:
            collector.kill()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p * (len(latencies) - 1)))] * 1000

    print(
        f"{args.probes} probes uploading one bundle ({args.per_bundle} measurements) at once: "
        f"p50 {pct(0.5):.0f} ms, p90 {pct(0.9):.0f} ms, p99 {pct(0.99):.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms; "
        f"{stored}/{args.probes} stored (201); {wall:.1f} s including enrolment"
    )


if __name__ == "__main__":
    main()
