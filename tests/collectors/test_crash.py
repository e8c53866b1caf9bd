"""Real collector processes: kill -9 mid-burst, a collector that is away, no client addresses."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from probe.evidence.bundle import SealedBundle
from probe.evidence.outbox import Outbox
from probe.evidence.upload import Uploader, enroll
from tests.collectors.factories import TOKEN, make_key, make_sealed
from tests.collectors.processes import CollectorProcess, free_port
from translog import merkle

pytestmark = pytest.mark.slow


@pytest.fixture
def processes() -> Iterator[list[CollectorProcess]]:
    started: list[CollectorProcess] = []
    yield started
    for p in started:
        p.stop()


async def burst(
    url: str,
    sealed: list[SealedBundle],
    acked: dict[str, int],
    concurrency: int = 8,
    kill_at: tuple[int, CollectorProcess] | None = None,
) -> None:
    queue: asyncio.Queue[SealedBundle] = asyncio.Queue()
    for s in sealed:
        queue.put_nowait(s)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            s = queue.get_nowait()
            try:
                r = await client.post(f"{url}/api/v1/bundles", content=s.to_bytes())
            except httpx.HTTPError:
                continue
            if r.status_code in (200, 201):
                acked[s.digest] = r.status_code
                if kill_at and len(acked) == kill_at[0]:
                    kill_at[1].kill()  # SIGKILL with requests still in flight

    async with httpx.AsyncClient(timeout=10.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def stored_state(db_path: Path) -> tuple[dict[str, int], dict[str, int], int]:
    """(digest -> measurement_count, digest -> measurement rows, log size) straight from SQLite."""
    with sqlite3.connect(db_path) as db:
        counts = dict(db.execute("SELECT digest, measurement_count FROM bundles").fetchall())
        rows = dict(
            db.execute(
                "SELECT bundle_digest, count(*) FROM measurements GROUP BY bundle_digest"
            ).fetchall()
        )
        (size,) = db.execute("SELECT size FROM log_head").fetchone()
    return counts, rows, size


def test_kill_9_mid_burst_keeps_every_acknowledged_bundle_once(
    tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """SIGKILL during a burst; after restart every 201/200 bundle is there exactly once."""
    data = tmp_path / "data"
    first = CollectorProcess(data, None, "--admin-token", "t")
    processes.append(first)
    first.wait_ready()
    key = make_key()
    asyncio.run(enroll(first.url, key, TOKEN, country="PK"))
    sealed = [make_sealed(key, 5, start=i * 5) for i in range(400)]
    acked: dict[str, int] = {}

    asyncio.run(burst(first.url, sealed, acked, kill_at=(60, first)))
    assert 60 <= len(acked) < len(sealed), "the kill did not land mid-burst"

    counts, rows, size = stored_state(data / "collector.db")
    assert set(acked) <= set(counts)
    assert all(rows.get(d, 0) == n for d, n in counts.items()), "a bundle is half-stored"
    assert len(counts) == size

    second = CollectorProcess(data)
    processes.append(second)
    second.wait_ready()
    for digest in acked:
        assert 200 == httpx.get(f"{second.url}/api/v1/bundles/{digest}").status_code
    retry: dict[str, int] = {}
    asyncio.run(burst(second.url, sealed, retry, concurrency=4))
    assert len(sealed) == len(retry)
    assert all(200 == retry[d] for d in acked)  # acknowledged before: already stored

    counts, rows, size = stored_state(data / "collector.db")
    assert {s.digest for s in sealed} == set(counts)
    assert 400 == size
    assert 400 * 5 == sum(rows.values())
    cp = httpx.get(f"{second.url}/api/v1/log/checkpoint").json()
    with sqlite3.connect(data / "collector.db") as db:
        order = [d for (d,) in db.execute("SELECT digest FROM bundles ORDER BY log_index")]
    tree = merkle.MemoryTree([merkle.leaf_hash(bytes.fromhex(d)) for d in order])
    assert tree.root().hex() == cp["root"]

    second.stop()
    log = second.log.read_text() + first.log.read_text()
    assert "POST /api/v1/bundles" not in log  # no access log, so no client addresses


def test_outbox_keeps_bundles_while_the_collector_is_away(
    tmp_path: Path, processes: list[CollectorProcess]
) -> None:
    """Collector down: bundles stay queued; when it is back they drain once, no duplicates."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    now = [1000.0]
    key = make_key()
    sealed = [make_sealed(key, 2, start=i * 2) for i in range(20)]
    with Outbox(tmp_path / "outbox.db", clock=lambda: now[0]) as box:
        for s in sealed:
            box.put(s.digest, s.to_bytes())
        report = asyncio.run(Uploader(box, url).drain())
        assert (0, 1) == (report.sent, report.deferred)
        assert 20 == box.stats().pending

        collector = CollectorProcess(tmp_path / "data", port)
        processes.append(collector)
        collector.wait_ready()
        asyncio.run(enroll(url, key, TOKEN, country="PK"))
        now[0] += 7 * 86400  # a week later: nothing expired
        report = asyncio.run(Uploader(box, url).drain())
        assert (20, 0) == (report.sent, report.deferred)
        assert 0 == box.stats().pending
        for s in sealed[:5]:
            box.put(s.digest, s.to_bytes())  # e.g. the acknowledgement was lost
        report = asyncio.run(Uploader(box, url).drain())
        assert (0, 5) == (report.sent, report.already)
    counts, rows, size = stored_state(tmp_path / "data" / "collector.db")
    assert (20, 40, 20) == (len(counts), sum(rows.values()), size)
