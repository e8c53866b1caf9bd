"""The uploader and enrolment, against an in-process collector and scripted transports."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from collectors.config import CollectorSettings
from probe.evidence.outbox import Outbox
from probe.evidence.upload import (
    BUNDLES_PATH,
    EnrollmentError,
    Uploader,
    enroll,
    retry_after_seconds,
)
from reports.app import create_app
from tests.collectors.factories import make_key, make_sealed

pytestmark = pytest.mark.anyio


def collector_client(tmp_path: Path, **settings: object) -> httpx.AsyncClient:
    """A collector whose keys need no token (the enrolment proof is still checked)."""
    settings = {"enroll_policy": "open", **settings}
    app = create_app(CollectorSettings(data_dir=tmp_path / "collector", **settings))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")


async def test_drain_uploads_everything_once(tmp_path: Path) -> None:
    """Due bundles go up (201) and leave the outbox; putting them again finds them stored."""
    async with collector_client(tmp_path) as client:
        key = make_key()
        assert key.key_id == await enroll("http://c", key, country="PK", client=client)
        sealed = [make_sealed(key, 2, start=i * 2) for i in range(5)]
        with Outbox(tmp_path / "o.db") as box:
            for s in sealed:
                box.put(s.digest, s.to_bytes())
            report = await Uploader(box, "http://c", client=client, batch=2).drain()
            assert (5, 0, 0) == (report.sent, report.dead, report.deferred)
            assert 0 == box.stats().pending
            for s in sealed:
                box.put(s.digest, s.to_bytes())
            again = await Uploader(box, "http://c", client=client).drain()
            assert (0, 5) == (again.sent, again.already)
        assert 5 == (await client.get("/healthz")).json()["log_size"]


async def test_bundles_travel_gzip_compressed_and_count_what_was_sent(tmp_path: Path) -> None:
    """The collector takes a gzip body; the report counts the compressed bytes that went out."""
    async with collector_client(tmp_path) as client:
        key = make_key()
        await enroll("http://c", key, country="PK", client=client)
        sealed = make_sealed(key, 20)
        with Outbox(tmp_path / "o.db") as box:
            box.put(sealed.digest, sealed.to_bytes())
            report = await Uploader(box, "http://c", client=client).drain()
        assert 1 == report.sent
        assert len(gzip.compress(sealed.to_bytes(), compresslevel=6, mtime=0)) == report.bytes_sent
        assert report.bytes_sent < len(sealed.to_bytes()) / 3
        stored = await client.get(f"/api/v1/bundles/{sealed.digest}")
        assert sealed.to_bytes() == stored.content  # stored as signed, not as sent


async def test_a_collector_without_gzip_gets_plain_json(tmp_path: Path) -> None:
    """A 415 to the compressed body: the same bundle again, uncompressed, and so on after."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("content-encoding"))
        if request.headers.get("content-encoding") == "gzip":
            return httpx.Response(415, json={"error": "encoding"})
        return httpx.Response(201, json={"status": "stored"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with Outbox(tmp_path / "o.db") as box:
            for i in range(2):
                box.put(f"{i:064x}", b"{}")
            report = await Uploader(box, "http://c", client=client).drain()
    assert 2 == report.sent
    assert ["gzip", None, None] == seen


async def test_refused_bundles_go_to_dead_letters(tmp_path: Path) -> None:
    """A 4xx (here 401, key not enrolled) dead-letters the bundle with the collector's reason."""
    async with collector_client(tmp_path) as client:
        sealed = make_sealed(make_key())
        with Outbox(tmp_path / "o.db") as box:
            box.put(sealed.digest, sealed.to_bytes())
            report = await Uploader(box, "http://c", client=client).drain()
            assert 1 == report.dead
            [(digest, status, reason)] = box.dead_letters()
    assert (sealed.digest, 401) == (digest, status)
    assert "enrol" in reason


async def test_429_and_5xx_defer_and_stop_the_round(tmp_path: Path) -> None:
    """429 honours Retry-After; 503 and network errors back off; the round stops at once."""
    answers = iter(
        [
            httpx.Response(429, json={"error": "rate_limited"}, headers={"retry-after": "120"}),
            httpx.Response(503, json={"error": "storage_unavailable"}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            return next(answers)
        except StopIteration:
            raise httpx.ConnectError("refused", request=request) from None

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with Outbox(tmp_path / "o.db", clock=lambda: 0.0) as box:
            for i in range(3):
                box.put(f"{i:064x}", b"{}")
            up = Uploader(box, "http://c", client=client)
            r1 = await up.drain()
            assert 120 == box.get(f"{0:064x}").next_attempt_at  # type: ignore[union-attr]
            r2 = await up.drain()
            r3 = await up.drain()
            assert [1, 1, 1] == [r1.deferred, r2.deferred, r3.deferred]
            assert 3 == box.stats().pending
            assert "ConnectError" in (box.get(f"{2:064x}").last_error or "")  # type: ignore[union-attr]


async def test_enroll_reports_refusal(tmp_path: Path) -> None:
    """A token-only collector refuses enrolment without the token; with it, it accepts."""
    async with collector_client(
        tmp_path, enroll_policy="token", enroll_tokens=(SecretStr("t"),)
    ) as client:
        key = make_key()
        with pytest.raises(EnrollmentError, match="403"):
            await enroll("http://c", key, country="PK", client=client)
        assert key.key_id == await enroll("http://c", key, "t", country="PK", client=client)


def test_retry_after_parsing() -> None:
    """Retry-After as seconds or an HTTP date."""
    assert 30.0 == retry_after_seconds("30")
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class AnswerOnItsWay(httpx.AsyncBaseTransport):
    """The collector stores the bundle at once; its answer takes ``delay`` s to come back."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.stored = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == BUNDLES_PATH:
            self.stored.set()
            await asyncio.sleep(self.delay)
        return response


async def cancel_once_stored(tmp_path: Path, delay: float) -> tuple[int, set[str], list[str]]:
    """Two bundles queued; the drain is cancelled while the first one's answer is on its way.

    Returns (bundles the collector stored, digests still queued, digests in queue order).
    """
    app = create_app(CollectorSettings(data_dir=tmp_path / "collector", enroll_policy="open"))
    transport = AnswerOnItsWay(httpx.ASGITransport(app=app), delay)
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
        key = make_key()
        await enroll("http://c", key, country="PK", client=client)
        sealed = [make_sealed(key, 2, start=i * 2) for i in range(2)]
        with Outbox(tmp_path / "o.db") as box:
            for s in sealed:
                box.put(s.digest, s.to_bytes())
            drain = asyncio.create_task(Uploader(box, "http://c", client=client).drain())
            await transport.stored.wait()
            drain.cancel()
            with pytest.raises(asyncio.CancelledError):
                await drain
            queued = {s.digest for s in sealed if box.get(s.digest) is not None}
        transport.delay = 0.0
        stored = (await client.get("/healthz")).json()["log_size"]
    return stored, queued, [s.digest for s in sealed]


async def test_a_cancelled_drain_records_the_answer_on_its_way(tmp_path: Path) -> None:
    """A stop mid-upload never leaves a bundle both stored at the collector and queued."""
    stored, queued, order = await cancel_once_stored(tmp_path, delay=0.2)
    assert 1 == stored
    assert {order[1]} == queued  # the first left the outbox; the second was never sent


async def test_an_answer_that_never_comes_leaves_the_bundle_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the grace the stop goes on; the bundle stays queued and is sent again later."""
    monkeypatch.setattr("probe.evidence.upload.ANSWER_GRACE", 0.05)
    stored, queued, order = await cancel_once_stored(tmp_path, delay=30.0)
    assert 1 == stored
    assert set(order) == queued
