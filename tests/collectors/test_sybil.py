"""Reports count probes, not bundles: Sybil keys cannot confirm a block; revocation recomputes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from probe.evidence.bundle import build, seal
from probe.evidence.keys import ProbeKey
from probe.evidence.upload import enroll
from tests.collectors.conftest import ADMIN
from tests.collectors.factories import make_key
from tests.collectors.test_enrolment import collector, post
from tests.reports.factories import measurement

pytestmark = pytest.mark.anyio
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
AUTH = {"authorization": f"Bearer {ADMIN}"}


async def upload(c: httpx.AsyncClient, key: ProbeKey, verdict: str, n: int, tag: int) -> str:
    """One bundle of ``n`` measurements of x from PK/AS64500 in HOUR, all ``verdict``."""
    method = "tls.reset" if verdict == "blocked" else None
    at = HOUR + timedelta(minutes=10 + tag % 40)
    items = [
        measurement(tag * 100 + i, "x", verdict, method, at, asn=64500, cc="PK") for i in range(n)
    ]
    sealed = seal(build(items, key, country="PK", created_at=at), key)
    r = await post(c, sealed.to_bytes())
    assert 201 == r.status_code, r.text
    return sealed.digest


async def enrolled(c: httpx.AsyncClient, token: str | None) -> ProbeKey:
    key = make_key(64500)
    await enroll("http://c", key, token, country="PK", client=c)
    return key


async def cell(c: httpx.AsyncClient) -> dict[str, Any]:
    params = {"platform": "x", "asn": 64500, "since": HOUR.isoformat()}
    r = await c.get("/api/v1/reports/reachability", params=params)
    assert 200 == r.status_code, r.text
    rows: list[dict[str, Any]] = r.json()["result"]
    assert 1 == len(rows)
    return rows[0]


async def incidents(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    params = {"platform": "x", "asn": 64500, "since": HOUR.isoformat()}
    found: list[dict[str, Any]] = (await c.get("/api/v1/reports/incidents", params=params)).json()[
        "result"
    ]
    return found


async def test_one_key_with_ten_bundles_does_not_outvote_five_probes(tmp_path: Path) -> None:
    """Each key has one vote per cell, however many bundles it sends."""
    tokens = tuple(SecretStr(f"volunteer-{i}") for i in range(6))
    async with collector(tmp_path, enroll_tokens=tokens) as c:
        for i in range(5):
            await upload(c, await enrolled(c, f"volunteer-{i}"), "reachable", 3, i)
        attacker = await enrolled(c, "volunteer-5")
        for n in range(10):
            await upload(c, attacker, "blocked", 3, 10 + n)
        row = await cell(c)
        assert (row["state"], row["probes"], row["reachable"], row["blocked"]) == (
            "reachable",
            6,
            5,
            1,
        )
        assert 45 == row["measurements"]
        assert [] == await incidents(c)


@pytest.mark.parametrize("policy", ["open", "one-token"])
async def test_sybil_keys_cannot_confirm_a_block(tmp_path: Path, policy: str) -> None:
    """Keys one person mints (open policy, or one token) agree on a block: never confirmed.

    Two keys enrolled with two different tokens do confirm it (the check can fail).
    """
    settings: dict[str, Any] = {"enroll_tokens": (SecretStr("mine"), SecretStr("yours"))}
    if policy == "open":
        settings["enroll_policy"] = "open"
    async with collector(tmp_path, **settings) as c:
        token = None if policy == "open" else "mine"
        for n in range(5):
            await upload(c, await enrolled(c, token), "blocked", 3, n)
        row = await cell(c)
        assert (row["state"], row["probes"], row["confirmed"]) == ("blocked", 5, False)
        [incident] = await incidents(c)
        assert not incident["confirmed"]
        await upload(c, await enrolled(c, "yours"), "blocked", 3, 9)
        row = await cell(c)
        assert (row["state"], row["confirmed"], row["confirmed_families"]) == (
            "blocked",
            True,
            ["tls"],
        )


async def test_revoking_keys_removes_their_votes_but_not_their_log_entries(
    tmp_path: Path,
) -> None:
    """Revocation recomputes the reports without the key; the log keeps its bundles, marked."""
    tokens = tuple(SecretStr(f"v{i}") for i in range(4))
    async with collector(tmp_path, enroll_tokens=tokens) as c:
        honest = await enrolled(c, "v0")
        await upload(c, honest, "reachable", 3, 0)
        attackers = [await enrolled(c, f"v{i}") for i in (1, 2, 3)]
        digests = [await upload(c, key, "blocked", 3, 1 + n) for n, key in enumerate(attackers)]
        before = await cell(c)
        assert (before["state"], before["confirmed"], before["probes"]) == ("blocked", True, 4)
        assert 1 == len(await incidents(c))
        size = (await c.get("/healthz")).json()["log_size"]
        for key in attackers:
            url = f"/api/v1/admin/probes/{key.key_id}/revoke"
            assert 200 == (await c.post(url, headers=AUTH, json={"reason": "sybil"})).status_code
        after = await cell(c)
        assert (after["state"], after["confirmed"], after["probes"], after["blocked"]) == (
            "reachable",
            False,
            1,
            0,
        )
        assert (3, {}) == (after["measurements"], after["methods"])
        assert [] == await incidents(c)
        assert size == (await c.get("/healthz")).json()["log_size"]  # append-only
        proof = await c.get(
            "/api/v1/log/proof/inclusion", params={"digest": digests[0], "size": size}
        )
        assert 200 == proof.status_code and proof.json()["key_revoked"] is True
        kept = await c.get(f"/api/v1/bundles/{digests[0]}")
        assert 200 == kept.status_code and "key-revoked" in kept.headers
        # the honest probe's measurements still count, and new ones add up as before
        await upload(c, honest, "reachable", 3, 50)
        assert (6, 1, 1) == (
            (row := await cell(c))["measurements"],
            row["probes"],
            row["reachable"],
        )
