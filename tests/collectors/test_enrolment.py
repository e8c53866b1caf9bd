"""Enrolment that binds: token or approval, proof of possession, strong keys, one network; DSSE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from collectors.config import CollectorSettings
from collectors.enrolment import CHALLENGE_TTL, Challenges, EnrolmentRefused
from probe.evidence.bundle import build, seal
from probe.evidence.enrolment import enrolment_message
from probe.evidence.keys import ProbeKey
from probe.evidence.pubkeys import P
from probe.evidence.signing import b64decode, b64encode, canonical_json, sign_envelope
from probe.evidence.upload import EnrollmentError, enroll
from probe.model.bundle import PAYLOAD_TYPE, Envelope
from reports.app import create_app
from tests.collectors.conftest import ADMIN
from tests.collectors.factories import T0, TOKEN, make_key, make_measurement, make_sealed

pytestmark = pytest.mark.anyio
AUTH = {"authorization": f"Bearer {ADMIN}"}


def collector(tmp_path: Path, **settings: Any) -> httpx.AsyncClient:
    base: dict[str, Any] = {"admin_token": SecretStr(ADMIN), "enroll_tokens": (SecretStr(TOKEN),)}
    app = create_app(CollectorSettings(data_dir=tmp_path / "c", **(base | settings)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c")


async def post(c: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await c.post("/api/v1/bundles", content=data)


async def signed_request(
    c: httpx.AsyncClient,
    key: ProbeKey,
    *,
    country: str | None = "PK",
    signer: ProbeKey | None = None,
    public_key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    challenge = (await c.post("/api/v1/probes/challenge")).json()["challenge"]
    public = public_key or key.public_key_b64
    message = enrolment_message(challenge, public, country, key.asn)
    body = {
        "public_key": public,
        "country": country,
        "asn": key.asn,
        "challenge": challenge,
        "signature": b64encode((signer or key).private_key.sign(message)),
        **extra,
    }
    return await c.post("/api/v1/probes", json=body)


async def test_default_policy_needs_a_token_or_an_admins_approval(tmp_path: Path) -> None:
    """Without a token a key waits (202) and its bundles are 403 until an admin approves it."""
    async with collector(tmp_path) as c:
        key = make_key()
        waiting = await signed_request(c, key)
        assert (202, "pending") == (waiting.status_code, waiting.json()["status"])
        with pytest.raises(EnrollmentError, match="approval"):
            await enroll("http://c", key, country="PK", client=c)
        refused = await post(c, make_sealed(key).to_bytes())
        assert (403, "pending_approval") == (refused.status_code, refused.json()["error"])
        url = f"/api/v1/admin/probes/{key.key_id}/approve"
        assert 401 == (await c.post(url)).status_code
        assert 200 == (await c.post(url, headers=AUTH)).status_code
        assert 201 == (await post(c, make_sealed(key).to_bytes())).status_code
        with_token = make_key()
        assert with_token.key_id == await enroll(
            "http://c", with_token, TOKEN, country="PK", client=c
        )
        again = await signed_request(c, with_token, token=TOKEN)
        assert (200, "already_enrolled") == (again.status_code, again.json()["status"])


async def test_token_policy_refuses_missing_and_wrong_tokens(tmp_path: Path) -> None:
    """With enroll_policy=token a key without the right token is refused, with a reason."""
    async with collector(tmp_path, enroll_policy="token") as c:
        key = make_key()
        none = await signed_request(c, key)
        wrong = await signed_request(c, key, token="guess")
        right = await signed_request(c, key, token=TOKEN)
    assert (403, "token_required") == (none.status_code, none.json()["error"])
    assert (403, "bad_token") == (wrong.status_code, wrong.json()["error"])
    assert 201 == right.status_code


async def test_enrolment_needs_the_private_key_and_a_fresh_challenge(tmp_path: Path) -> None:
    """A signature by another key, for another network, or over a made-up challenge is refused."""
    async with collector(tmp_path) as c:
        key, other = make_key(), make_key()
        by_other = await signed_request(c, key, signer=other, token=TOKEN)
        assert (403, "bad_proof") == (by_other.status_code, by_other.json()["error"])
        challenge = (await c.post("/api/v1/probes/challenge")).json()["challenge"]
        message = enrolment_message(challenge, key.public_key_b64, "PK", key.asn)
        relabelled = await c.post(
            "/api/v1/probes",
            json={
                "public_key": key.public_key_b64,
                "country": "IR",  # signed for PK
                "asn": key.asn,
                "challenge": challenge,
                "signature": b64encode(key.private_key.sign(message)),
                "token": TOKEN,
            },
        )
        assert (403, "bad_proof") == (relabelled.status_code, relabelled.json()["error"])
        made_up = b64encode(bytes(56))
        forged = await c.post(
            "/api/v1/probes",
            json={
                "public_key": key.public_key_b64,
                "country": "PK",
                "asn": key.asn,
                "challenge": made_up,
                "signature": b64encode(
                    key.private_key.sign(
                        enrolment_message(made_up, key.public_key_b64, "PK", key.asn)
                    )
                ),
                "token": TOKEN,
            },
        )
        assert (400, "bad_challenge") == (forged.status_code, forged.json()["error"])
        missing = await c.post("/api/v1/probes", json={"public_key": key.public_key_b64})
        assert 422 == missing.status_code


def test_challenges_expire() -> None:
    """A challenge is valid for CHALLENGE_TTL seconds from its issue, by the collector's clock."""
    now = [1_000_000.0]
    challenges = Challenges(b"s" * 32, clock=lambda: now[0])
    issued = challenges.issue()
    now[0] += CHALLENGE_TTL - 1
    challenges.check(issued)
    now[0] += 2
    with pytest.raises(EnrolmentRefused, match="valid for"):
        challenges.check(issued)
    with pytest.raises(EnrolmentRefused, match="not issued here"):
        Challenges(b"t" * 32).check(Challenges(b"s" * 32).issue())


SMALL_ORDER = [
    bytes(32),  # (0, 0) is not on the curve
    (1).to_bytes(32, "little"),  # the identity
    (P - 1).to_bytes(32, "little"),  # order 2
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    (P + 1).to_bytes(32, "little"),  # the identity, not reduced
    (1 + (1 << 255)).to_bytes(32, "little"),  # the identity, sign bit set with x = 0
]


@pytest.mark.parametrize("raw", SMALL_ORDER, ids=lambda raw: raw.hex()[:8])
async def test_small_order_and_non_canonical_keys_are_refused(tmp_path: Path, raw: bytes) -> None:
    """A key that is not a canonical point of large order is refused, with a token too."""
    async with collector(tmp_path) as c:
        challenge = (await c.post("/api/v1/probes/challenge")).json()["challenge"]
        r = await c.post(
            "/api/v1/probes",
            json={
                "public_key": b64encode(raw),
                "country": "PK",
                "asn": 64500,
                "challenge": challenge,
                "signature": b64encode(bytes(64)),  # the identity "verifies" this (s = 0)
                "token": TOKEN,
            },
        )
    assert (400, "bad_key") == (r.status_code, r.json()["error"])


async def test_a_key_is_bound_to_the_network_it_enrolled_for(tmp_path: Path) -> None:
    """Bundles for another network are refused; the key cannot be re-enrolled for another one."""
    async with collector(tmp_path) as c:
        key = make_key(asn=64500)
        await enroll("http://c", key, TOKEN, country="PK", client=c)
        assert 201 == (await post(c, make_sealed(key).to_bytes())).status_code
        elsewhere = [make_measurement(i, asn=9999, country="IR") for i in range(2)]
        moved = ProbeKey(key.private_key, 9999)
        bundle = seal(build(elsewhere, moved, country="IR", created_at=T0), moved)
        r = await post(c, bundle.to_bytes())
        assert (403, "wrong_network") == (r.status_code, r.json()["error"])
        other_country = [make_measurement(i + 5, asn=64500, country="IR") for i in range(2)]
        bundle = seal(build(other_country, key, country="IR", created_at=T0), key)
        assert 403 == (await post(c, bundle.to_bytes())).status_code
        with pytest.raises(EnrollmentError, match="wrong_network|another network"):
            await enroll("http://c", key, TOKEN, country="IR", client=c)


def _cosigned(payload: bytes, *keys: ProbeKey, lie_about: ProbeKey | None = None) -> bytes:
    signatures = []
    for key in keys:
        sig = sign_envelope(payload, PAYLOAD_TYPE, key.private_key).signatures[0]
        signatures.append(sig)
    if lie_about is not None:  # a first signature that names an enrolled key but does not verify
        signatures.insert(0, signatures[0].model_copy(update={"keyid": lie_about.key_id}))
    envelope = Envelope(
        payload=b64encode(payload), payloadType=PAYLOAD_TYPE, signatures=tuple(signatures)
    )
    return canonical_json(envelope.model_dump(mode="json"))


async def test_dsse_accepts_when_any_signature_verifies_with_a_key_it_names(tmp_path: Path) -> None:
    """A first signature naming another enrolled (or revoked) key does not hide a valid one."""
    async with collector(tmp_path) as c:
        signer, bystander = make_key(), make_key()
        for key in (signer, bystander):
            await enroll("http://c", key, TOKEN, country="PK", client=c)
        payload = b64decode(make_sealed(signer).envelope.payload)
        assert 201 == (await post(c, _cosigned(payload, signer, lie_about=bystander))).status_code
        await c.post(f"/api/v1/admin/probes/{bystander.key_id}/revoke", headers=AUTH)
        payload = b64decode(make_sealed(signer, start=10).envelope.payload)
        assert 201 == (await post(c, _cosigned(payload, signer, lie_about=bystander))).status_code
        only_bystander = _cosigned(payload, make_key(), lie_about=bystander)
        r = await post(c, only_bystander)
        assert (403, "revoked_key") == (r.status_code, r.json()["error"])
