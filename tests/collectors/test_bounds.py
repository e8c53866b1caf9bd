"""Bounded input: times normalised to UTC inside the window, reports that do not reach past now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from collectors.bounds import OutOfBounds, TimeWindow
from collectors.schema import measurements
from probe.evidence.signing import b64decode, canonical_json, sign_envelope
from probe.evidence.upload import enroll
from probe.model.bundle import PAYLOAD_TYPE
from tests.collectors.factories import TOKEN, make_key, make_sealed
from tests.collectors.test_enrolment import collector, post

pytestmark = pytest.mark.anyio


async def test_offsets_are_stored_in_utc(tmp_path: Path) -> None:
    """A +14:00 start time is stored as the same instant in UTC (SQLite keeps no offset)."""
    async with collector(tmp_path) as c:
        key = make_key()
        await enroll("http://c", key, TOKEN, country="PK", client=c)
        bundle = json.loads(b64decode(make_sealed(key, 1).envelope.payload))
        instant = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        kiribati = instant.astimezone(timezone(timedelta(hours=14)))
        bundle["measurements"][0]["started_at"] = kiribati.isoformat()
        envelope = sign_envelope(canonical_json(bundle), PAYLOAD_TYPE, key.private_key)
        assert 201 == (await post(c, canonical_json(envelope.model_dump(mode="json")))).status_code
        transport = c._transport
        assert isinstance(transport, httpx.ASGITransport)
        engine = transport.app.state.store.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            stored = conn.execute(select(measurements.c.started_at)).scalar_one()
    assert instant == (stored if stored.tzinfo else stored.replace(tzinfo=UTC))


def test_the_window_is_around_the_collectors_clock() -> None:
    now = datetime(2030, 6, 1, tzinfo=UTC)
    window = TimeWindow(clock=now.timestamp)
    assert window.check("t", now - timedelta(days=89)) == now - timedelta(days=89)
    assert window.check("t", now + timedelta(minutes=14)) == now + timedelta(minutes=14)
    with pytest.raises(OutOfBounds, match="days old"):
        window.check("t", now - timedelta(days=91))
    with pytest.raises(OutOfBounds, match="ahead"):
        window.check("t", now + timedelta(minutes=16))
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    with pytest.raises(OutOfBounds):
        window.check("t", far)


async def test_reports_do_not_reach_past_now(tmp_path: Path) -> None:
    """A report window ending after the current bucket is a 422; the dashboard keeps working."""
    async with collector(tmp_path) as c:
        future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        r = await c.get("/api/v1/reports/reachability", params={"until": future})
        assert 422 == r.status_code and "past now" in r.json()["detail"]
        assert 200 == (await c.get("/api/v1/reports/reachability")).status_code
        assert 200 == (await c.get("/dashboard")).status_code


async def test_big_asns_are_refused_and_reports_accept_every_valid_one(tmp_path: Path) -> None:
    """ASN 2^32-1 is the largest; a report query for it works."""
    async with collector(tmp_path) as c:
        r = await c.get("/api/v1/reports/reachability", params={"asn": 2**32 - 1})
        assert 200 == r.status_code
        r = await c.get("/api/v1/reports/reachability", params={"asn": 2**32})
        assert 422 == r.status_code
        r = await c.get("/api/v1/reports/reachability", params={"asn": 2**63})
        assert 422 == r.status_code
