"""The collector API in-process through httpx.ASGITransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from collectors.config import CollectorSettings
from collectors.schema import bundles, log_head, measurements
from collectors.store import Store
from probe.evidence.bundle import seal
from probe.evidence.keys import ProbeKey
from probe.evidence.signing import b64decode, canonical_json, load_public_key, sign_envelope
from probe.evidence.upload import EnrollmentError, enroll
from probe.model.bundle import PAYLOAD_TYPE, Bundle
from reports.app import create_app
from tests.collectors.conftest import ADMIN
from tests.collectors.factories import TOKEN, make_key, make_measurement, make_sealed
from translog import merkle
from translog.checkpoint import verify_checkpoint

pytestmark = pytest.mark.anyio


async def enrolled(
    client: httpx.AsyncClient, key: ProbeKey | None = None, token: str | None = TOKEN
) -> ProbeKey:
    """A key enrolled the way probes do it: challenge signed, bound to PK and its ASN."""
    key = key or make_key()
    assert key.key_id == await enroll("http://collector", key, token, country="PK", client=client)
    return key


async def post(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/bundles", content=data, headers={"content-type": "application/json"}
    )


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.store
    return store


async def test_bundle_is_stored_once_with_one_row_per_measurement(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """201 stores the bundle and its measurements; a replay is 200; GET returns the envelope."""
    key = await enrolled(client)
    sealed = make_sealed(key, 4)
    first = await post(client, sealed.to_bytes())
    replay = await post(client, sealed.to_bytes())
    assert (201, 200) == (first.status_code, replay.status_code)
    assert sealed.digest == first.json()["digest"] == replay.json()["digest"]
    assert "already_stored" == replay.json()["status"]

    got = await client.get(f"/api/v1/bundles/{sealed.digest}")
    assert 200 == got.status_code
    assert sealed.to_bytes() == got.content

    with store_of(app).engine.connect() as conn:
        rows = conn.execute(select(measurements).order_by(measurements.c.measurement_id)).all()
        n_bundles = conn.execute(select(func.count()).select_from(bundles)).scalar()
    assert 1 == n_bundles
    assert 4 == len(rows)
    first_row = rows[0]._asdict()
    assert ("x", "PK", 64500, "blocked", "tls.reset") == (
        first_row["platform"],
        first_row["country"],
        first_row["asn"],
        first_row["verdict"],
        first_row["method"],
    )
    assert sealed.digest == first_row["bundle_digest"]
    assert "https://twitter.com/" == json.loads(first_row["body"])["target"]


async def test_unknown_missing_and_unknown_digest(client: httpx.AsyncClient) -> None:
    """An unenrolled key is 401; an unknown digest 404; a malformed digest 422."""
    sealed = make_sealed(make_key())
    r = await post(client, sealed.to_bytes())
    assert 401 == r.status_code
    assert "unknown_key" == r.json()["error"]
    assert 404 == (await client.get(f"/api/v1/bundles/{'0' * 64}")).status_code
    assert 422 == (await client.get("/api/v1/bundles/xyz")).status_code


async def test_forged_signature_is_403(client: httpx.AsyncClient, app: FastAPI) -> None:
    """A signature by another key under an enrolled keyid is refused and nothing is stored."""
    victim = await enrolled(client)
    forger = make_key()
    bundle = make_sealed(victim)
    payload = b64decode(bundle.envelope.payload)
    forged = sign_envelope(payload, PAYLOAD_TYPE, forger.private_key)
    forged = forged.model_copy(
        update={"signatures": (forged.signatures[0].model_copy(update={"keyid": victim.key_id}),)}
    )
    r = await post(client, canonical_json(forged.model_dump(mode="json")))
    assert 403 == r.status_code
    assert "bad_signature" == r.json()["error"]
    assert 0 == store_of(app).log_size()


async def test_revoked_key_is_403_and_admin_needs_the_token(client: httpx.AsyncClient) -> None:
    """Revocation through the admin API makes the key's bundles 403."""
    key = await enrolled(client)
    url = f"/api/v1/admin/probes/{key.key_id}/revoke"
    assert 401 == (await client.post(url)).status_code
    auth = {"authorization": f"Bearer {ADMIN}"}
    r = await client.post(url, headers=auth, json={"reason": "compromised"})
    assert 200 == r.status_code, r.text
    listed = (await client.get("/api/v1/admin/probes", headers=auth)).json()
    assert [(key.key_id, "compromised")] == [(p["key_id"], p["revoke_reason"]) for p in listed]
    refused = await post(client, make_sealed(key).to_bytes())
    assert 403 == refused.status_code
    assert "revoked_key" == refused.json()["error"]
    with pytest.raises(EnrollmentError, match="403"):
        await enrolled(client, key)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"payload": 1, "payloadType": "x", "signatures": []}',
        b'{"payload": "e30=", "payloadType": "application/json",'
        b' "signatures": [{"keyid": "k", "sig": "AAAA"}]}',
        b'{"payload": "%%%", "payloadType": "application/vnd.blockprobe.bundle+json",'
        b' "signatures": [{"keyid": "k", "sig": "AAAA"}]}',
    ],
)
async def test_malformed_envelopes_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    """Anything that is not a DSSE envelope of our payload type is 400 with a reason."""
    r = await post(client, body)
    assert 400 == r.status_code
    assert "malformed" == r.json()["error"]
    assert r.json()["detail"]


async def test_signed_payload_that_is_not_a_bundle_is_422(client: httpx.AsyncClient) -> None:
    """Validly signed JSON that is not a Bundle, or with a wrong count, is 422."""
    key = await enrolled(client)
    not_bundle = sign_envelope(b'{"hello": "world"}', PAYLOAD_TYPE, key.private_key)
    r = await post(client, canonical_json(not_bundle.model_dump(mode="json")))
    assert 422 == r.status_code
    assert "schema" == r.json()["error"]

    good = Bundle.model_validate_json(b64decode(make_sealed(key, 2).envelope.payload))
    raw = good.model_dump(mode="json")
    raw["manifest"]["measurement_count"] = 5
    lying = sign_envelope(canonical_json(raw), PAYLOAD_TYPE, key.private_key)
    r = await post(client, canonical_json(lying.model_dump(mode="json")))
    assert 422 == r.status_code
    assert "measurement_count" in r.json()["detail"] or "counts" in r.json()["detail"]


async def test_manifest_must_name_the_signer(client: httpx.AsyncClient) -> None:
    """A bundle signed by one enrolled key but whose manifest names another is 422."""
    a, b = await enrolled(client), await enrolled(client)
    payload = b64decode(make_sealed(a).envelope.payload)
    envelope = sign_envelope(payload, PAYLOAD_TYPE, b.private_key)
    r = await post(client, canonical_json(envelope.model_dump(mode="json")))
    assert 422 == r.status_code


async def test_too_large_is_413_before_reading_the_body(tmp_path: Any) -> None:
    """A declared or streamed body over the limit is refused with 413."""
    app = create_app(CollectorSettings(data_dir=tmp_path, max_bundle_bytes=1000))
    # the bundle route's limit; every other route has max_body_bytes (tests/collectors/test_bounds)
    transport = httpx.ASGITransport(app=app)
    chunks_sent = 0

    async def stream() -> Any:
        nonlocal chunks_sent
        for _ in range(100):
            chunks_sent += 1
            yield b"x" * 500

    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        declared = await c.post("/api/v1/bundles", content=b"{" * 5000)
        streamed = await c.post("/api/v1/bundles", content=stream())
    assert (413, 413) == (declared.status_code, streamed.status_code)
    assert "1000 bytes" in declared.json()["detail"]
    assert chunks_sent < 100  # refused while streaming, not after reading everything


async def test_the_limit_applies_to_the_decompressed_body_too(tmp_path: Any) -> None:
    """A small gzip body that inflates past the limit is 413; a bad one 400; brotli 415."""
    import gzip

    app = create_app(CollectorSettings(data_dir=tmp_path, max_bundle_bytes=1000))
    transport = httpx.ASGITransport(app=app)
    gz = {"content-encoding": "gzip"}
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        bomb = await c.post("/api/v1/bundles", content=gzip.compress(b"{" * 100_000), headers=gz)
        small = await c.post("/api/v1/bundles", content=gzip.compress(b"{}"), headers=gz)
        broken = await c.post("/api/v1/bundles", content=b"not gzip", headers=gz)
        cut = await c.post("/api/v1/bundles", content=gzip.compress(b"{}" * 50)[:-9], headers=gz)
        other = await c.post("/api/v1/bundles", content=b"{}", headers={"content-encoding": "br"})
    assert 413 == bomb.status_code
    assert (400, "malformed") == (small.status_code, small.json()["error"])  # read, then judged
    assert (400, 400) == (broken.status_code, cut.status_code)
    assert "decompress" in broken.json()["detail"]
    assert 415 == other.status_code


async def test_rate_limit_is_429_with_retry_after(tmp_path: Any) -> None:
    """Beyond the per-key burst, bundles get 429 and a Retry-After; replays still get 200."""
    settings = CollectorSettings(
        data_dir=tmp_path,
        rate_limit_burst=2,
        rate_limit_per_minute=1,
        enroll_tokens=(SecretStr(TOKEN),),
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        key = await enrolled(c)
        sealed = [make_sealed(key, 1, start=i) for i in range(3)]
        codes = [(await post(c, s.to_bytes())).status_code for s in sealed]
        limited = await post(c, sealed[2].to_bytes())
        replay = await post(c, sealed[0].to_bytes())
    assert [201, 201, 429] == codes
    assert 429 == limited.status_code
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate_limited" == limited.json()["error"]
    assert 200 == replay.status_code


async def test_log_checkpoint_and_proofs_verify(client: httpx.AsyncClient) -> None:
    """Every stored digest has an inclusion proof against the signed checkpoint."""
    key = await enrolled(client)
    sealed = [make_sealed(key, 1, start=i) for i in range(11)]
    sizes = []
    for s in sealed:
        assert 201 == (await post(client, s.to_bytes())).status_code
        sizes.append((await client.get("/api/v1/log/checkpoint")).json())
    cp = sizes[-1]
    public = load_public_key(b64decode(cp["public_key"]))
    checkpoint = verify_checkpoint(cp["note"], public, cp["origin"])
    assert 11 == checkpoint.size == cp["size"]
    assert checkpoint.root.hex() == cp["root"]
    tree = merkle.MemoryTree([merkle.leaf_hash(bytes.fromhex(s.digest)) for s in sealed])
    assert tree.root() == checkpoint.root
    for i, s in enumerate(sealed):
        p = (
            await client.get("/api/v1/log/proof/inclusion", params={"digest": s.digest, "size": 11})
        ).json()
        proof = [bytes.fromhex(h) for h in p["proof"]]
        leaf = bytes.fromhex(p["leaf_hash"])
        assert i == p["leaf_index"]
        assert merkle.verify_inclusion(leaf, i, 11, proof, checkpoint.root)
    for old in sizes[:-1]:
        p = (
            await client.get(
                "/api/v1/log/proof/consistency", params={"first": old["size"], "second": 11}
            )
        ).json()
        proof = [bytes.fromhex(h) for h in p["proof"]]
        assert merkle.verify_consistency(
            old["size"], 11, bytes.fromhex(old["root"]), checkpoint.root, proof
        )
    too_big = await client.get(
        "/api/v1/log/proof/inclusion", params={"digest": sealed[0].digest, "size": 12}
    )
    assert 400 == too_big.status_code


async def test_health_metrics_and_openapi(client: httpx.AsyncClient) -> None:
    """/healthz, Prometheus /metrics with counts by reason, and the OpenAPI document."""
    key = await enrolled(client)
    await post(client, make_sealed(key, 3).to_bytes())
    await post(client, b"junk")
    assert {"status": "ok", "log_size": 1} == (await client.get("/healthz")).json()
    text = (await client.get("/metrics")).text
    assert "blockprobe_bundles_accepted_total 1.0" in text
    assert 'blockprobe_bundles_rejected_total{reason="malformed"} 1.0' in text
    assert "blockprobe_measurements_stored_total 3.0" in text
    assert "# TYPE blockprobe_log_size gauge\nblockprobe_log_size 1.0" in text
    paths = (await client.get("/openapi.json")).json()["paths"]
    body = paths["/api/v1/bundles"]["post"]["requestBody"]["content"]["application/json"]
    assert {"payload", "payloadType", "signatures"} == set(body["schema"]["properties"])
    assert {"/api/v1/bundles", "/api/v1/probes", "/api/v1/log/checkpoint"} <= set(paths)


def test_failed_write_leaves_nothing_half_stored(app: FastAPI) -> None:
    """If the measurement insert fails, the bundle, its leaf and the log head roll back."""
    store = store_of(app)
    key = make_key()
    store.enroll(key.key_id, b64decode(key.public_key_b64), network=("PK", 64500), voucher="test")
    bad_rows = [{"measurement_id": "m", "platform": "x"}]  # NOT NULL columns missing
    with pytest.raises(Exception, match="NOT NULL"):
        store.add_bundle("ab" * 32, key.key_id, b"{}", bad_rows)
    with store.engine.connect() as conn:
        assert 0 == conn.execute(select(func.count()).select_from(bundles)).scalar()
        assert 0 == conn.execute(select(log_head.c.size)).scalar()
    assert (True, 0) == store.add_bundle("ab" * 32, key.key_id, b"{}", [])


def test_migrations_are_versioned_and_rerunnable(app: FastAPI, settings: Any) -> None:
    """A second collector on the same database finds the schema current."""
    from collectors.migrations import MIGRATIONS, current_version, migrate

    store = store_of(app)
    assert len(MIGRATIONS) == migrate(store.engine)
    with store.engine.connect() as conn:
        assert len(MIGRATIONS) == current_version(conn)
    create_app(settings)  # starts cleanly on the existing database


def test_seal_signs_the_serialised_bytes_once() -> None:
    """The digest is the sha256 of exactly the payload bytes that were signed."""
    import hashlib

    key = make_key()
    sealed = make_sealed(key)
    assert hashlib.sha256(b64decode(sealed.envelope.payload)).hexdigest() == sealed.digest
    with pytest.raises(ValueError, match="AS"):
        from probe.evidence.bundle import build

        build([make_measurement(asn=1)], key)
    other = make_key()
    with pytest.raises(ValueError, match="another key"):
        seal(Bundle.model_validate_json(b64decode(sealed.envelope.payload)), other)


async def test_nul_characters_are_refused_before_storage(client: httpx.AsyncClient) -> None:
    """PostgreSQL text cannot hold NUL: such a bundle is a 422, not a storage error."""
    key = await enrolled(client)
    raw = json.loads(b64decode(make_sealed(key, 1).envelope.payload))
    raw["measurements"][0]["platform"] = "x\x00"
    envelope = sign_envelope(canonical_json(raw), PAYLOAD_TYPE, key.private_key)
    r = await post(client, canonical_json(envelope.model_dump(mode="json")))
    assert 422 == r.status_code
    assert "NUL" in r.json()["detail"]
