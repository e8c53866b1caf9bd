"""Two collector processes sharing one PostgreSQL: one log, appended in one order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from probe.evidence.signing import b64decode, load_public_key
from probe.evidence.upload import enroll
from tests.collectors.factories import TOKEN, make_key, make_sealed
from tests.collectors.processes import CollectorProcess
from tests.postgres import postgres_schema
from translog import merkle
from translog.checkpoint import verify_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema of our own in the machine's PostgreSQL, dropped afterwards."""
    yield from postgres_schema("bp_collect")


def test_two_processes_share_one_log(tmp_path: Path, pg_url: str) -> None:
    """Concurrent bundles, some sent to both processes at once: each stored once, one tree.

    ``a`` runs two uvicorn workers on one port, ``b`` is a separate process: three in all.
    """
    data = tmp_path / "data"
    a = CollectorProcess(data, None, "--database", pg_url, "--workers", "2")
    b = CollectorProcess(data, None, "--database", pg_url)
    try:
        a.wait_ready()
        b.wait_ready()
        keys = [make_key(64500 + i) for i in range(4)]
        for i, key in enumerate(keys):
            asyncio.run(enroll((a, b)[i % 2].url, key, TOKEN, country="PK"))
        sealed = [make_sealed(keys[i % 4], 3, start=i * 3) for i in range(160)]

        async def send_all() -> list[int]:
            async with httpx.AsyncClient(timeout=30.0) as client:
                sem = asyncio.Semaphore(12)

                async def send(url: str, body: bytes) -> int:
                    async with sem:
                        r = await client.post(f"{url}/api/v1/bundles", content=body)
                        return r.status_code

                jobs = [send((a, b)[i % 2].url, s.to_bytes()) for i, s in enumerate(sealed)]
                jobs += [
                    send(b.url if i % 2 == 0 else a.url, s.to_bytes())
                    for i, s in enumerate(sealed[:40])
                ]  # the same bundle to the other process too
                return await asyncio.gather(*jobs)

        codes = asyncio.run(send_all())
        assert set(codes) <= {200, 201}
        assert 160 == codes.count(201)

        cp_a = httpx.get(f"{a.url}/api/v1/log/checkpoint").json()
        cp_b = httpx.get(f"{b.url}/api/v1/log/checkpoint").json()
        assert 160 == cp_a["size"] == cp_b["size"]
        assert cp_a["root"] == cp_b["root"]
        assert cp_a["public_key"] == cp_b["public_key"]

        engine = create_engine(pg_url)
        with engine.connect() as conn:
            order = conn.execute(text("SELECT digest FROM bundles ORDER BY log_index")).all()
            indexes = conn.execute(text("SELECT log_index FROM bundles ORDER BY 1")).scalars()
            n_rows = conn.execute(text("SELECT count(*) FROM measurements")).scalar()
            version = conn.execute(text("SELECT version FROM schema_version")).scalar()
        engine.dispose()
        assert list(range(160)) == list(indexes)
        assert 160 * 3 == n_rows
        assert version is not None and version >= 1
        tree = merkle.MemoryTree([merkle.leaf_hash(bytes.fromhex(d)) for (d,) in order])
        checkpoint = verify_checkpoint(
            cp_a["note"], load_public_key(b64decode(cp_a["public_key"])), cp_a["origin"]
        )
        assert tree.root() == checkpoint.root
        for i, (digest,) in enumerate(order[::17]):
            p = httpx.get(
                f"{(a, b)[i % 2].url}/api/v1/log/proof/inclusion",
                params={"digest": digest, "size": 160},
            ).json()
            proof = [bytes.fromhex(h) for h in p["proof"]]
            leaf = merkle.leaf_hash(bytes.fromhex(digest))
            assert merkle.verify_inclusion(leaf, p["leaf_index"], 160, proof, checkpoint.root)
        assert 2 == a.log.read_text().count("Started server process")
    finally:
        a.stop()
        b.stop()
