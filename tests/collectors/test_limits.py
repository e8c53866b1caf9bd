"""Limits and metrics hold across workers; enrolment and failed authentication are limited."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collectors.db import make_engine
from collectors.limits import SharedRateLimiter
from collectors.migrations import migrate
from probe.evidence.upload import EnrollmentError, enroll
from tests.collectors.conftest import ADMIN
from tests.collectors.factories import TOKEN, make_key, make_sealed
from tests.collectors.processes import CollectorProcess
from tests.collectors.test_enrolment import collector, post


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(
        tmp_path / "data", None, "--workers", "2", "--rate-limit", "10", "--enroll-rate", "3"
    )
    try:
        yield process.wait_ready(60)
    finally:
        process.stop()


def counter(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_two_workers_share_one_budget_and_one_set_of_metrics(
    two_workers: CollectorProcess,
) -> None:
    """10 bundles a minute per key with --workers 2 lets 10 through, not 20; /metrics sums both."""
    url = two_workers.url
    key = make_key()
    asyncio.run(enroll(url, key, TOKEN, country="PK"))
    sealed = [make_sealed(key, 2, start=i * 2) for i in range(40)]

    async def send_all() -> list[int]:
        async def one(data: bytes) -> int:
            async with httpx.AsyncClient(timeout=30) as client:  # a connection each: both workers
                return (await client.post(f"{url}/api/v1/bundles", content=data)).status_code

        return list(await asyncio.gather(*(one(s.to_bytes()) for s in sealed)))

    codes = asyncio.run(send_all())
    assert (10, 30) == (codes.count(201), codes.count(429))
    with pytest.raises(EnrollmentError, match="429"):
        for _ in range(4):  # 1 enrolment above, 3 a minute
            asyncio.run(enroll(url, make_key(), TOKEN, country="PK"))
    for _ in range(6):  # whichever worker answers, it reports the collector's totals
        text = httpx.get(f"{url}/metrics", headers={"connection": "close"}).text
        assert 10 == counter(text, "blockprobe_bundles_accepted_total")
        assert 20 == counter(text, "blockprobe_measurements_stored_total")
        assert 30 == counter(text, 'blockprobe_bundles_rejected_total{reason="rate_limited"}')
        assert 1 == counter(text, 'blockprobe_bundles_rejected_total{reason="enrol_rate_limited"}')


@pytest.mark.anyio
async def test_failed_authentications_are_limited(tmp_path: Path) -> None:
    """Past the budget, unknown keys, bad signatures and bad admin tokens get 429."""
    async with collector(tmp_path, auth_failures_per_minute=3) as c:
        good = make_key()
        await enroll("http://c", good, TOKEN, country="PK", client=c)
        codes = [(await post(c, make_sealed(make_key()).to_bytes())).status_code for _ in range(3)]
        assert [401, 401, 401] == codes
        limited = await post(c, make_sealed(make_key()).to_bytes())
        assert (429, "too_many_failures") == (limited.status_code, limited.json()["error"])
        assert int(limited.headers["retry-after"]) >= 1
        admin = await c.get("/api/v1/admin/probes", headers={"authorization": "Bearer guess"})
        assert 429 == admin.status_code
        # while the budget is spent, even the right token is not compared: guessing stops
        right = await c.get("/api/v1/admin/probes", headers={"authorization": f"Bearer {ADMIN}"})
        assert 429 == right.status_code
        late = make_key()
        with pytest.raises(EnrollmentError, match="429"):
            await enroll("http://c", late, TOKEN, country="PK", client=c)
        assert 201 == (await post(c, make_sealed(good).to_bytes())).status_code  # honest: fine


def test_the_shared_bucket_refills_by_the_wall_clock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    now = [1000.0]
    first = SharedRateLimiter(engine, 1.0, 2, clock=lambda: now[0])
    second = SharedRateLimiter(engine, 1.0, 2, clock=lambda: now[0])  # another worker
    assert [None, None] == [first.take("k"), second.take("k")]
    wait = first.take("k")
    assert wait is not None and 0.9 < wait <= 1.0
    now[0] += 1.0
    assert second.take("k") is None
    assert first.take("other") is None
    engine.dispose()
