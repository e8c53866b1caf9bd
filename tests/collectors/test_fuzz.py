"""Fuzz the collector: nothing invalid is stored, and no request gets a 5xx.

Bundles: invalid envelopes, forged and foreign signatures, out-of-range numbers (ASN past 2^32-1,
NaN, Infinity), times outside the accepted window or with extreme offsets, bundles for another
network than the key's. Every other route: random bodies, oversized declared or streamed bodies.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from collectors.config import CollectorSettings
from collectors.schema import bundles, measurements
from collectors.store import Store
from probe.evidence.bundle import open_sealed, read_envelope
from probe.evidence.signing import b64decode, b64encode, canonical_json, sign_envelope
from probe.model.bundle import PAYLOAD_TYPE
from reports.app import create_app
from tests.collectors.factories import make_key, make_sealed

LIMIT = 64 * 1024
ENROLLED = make_key()
REVOKED = make_key()
STRANGER = make_key()
GOOD = [make_sealed(ENROLLED, 2, start=i * 2) for i in range(6)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def envelope_dict(payload: bytes, key: Any = ENROLLED, keyid: str | None = None) -> dict[str, Any]:
    env = sign_envelope(payload, PAYLOAD_TYPE, key.private_key).model_dump(mode="json")
    if keyid is not None:
        env["signatures"][0]["keyid"] = keyid
    return env


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(kind, body): each kind is a way to be invalid, plus replays of valid bundles."""
    good = draw(st.sampled_from(GOOD))
    raw = good.to_bytes()
    doc = json.loads(raw)
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "random_bytes",
                "truncated",
                "oversized",
                "forged_sig",
                "foreign_key_claimed",
                "unknown_key",
                "revoked",
                "wrong_types",
                "random_json",
                "signed_garbage",
                "signed_mutated_bundle",
                "bitflip_payload",
                "asn_out_of_range",
                "not_a_number",
                "time_out_of_window",
                "other_network",
            ]
        )
    )
    if kind == "valid":
        return kind, raw
    if kind == "random_bytes":
        return kind, draw(st.binary(max_size=300))
    if kind == "truncated":
        return kind, raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "oversized":
        return kind, raw + b" " * (LIMIT + draw(st.integers(0, 1000)))
    if kind == "forged_sig":
        doc["signatures"][0]["sig"] = b64encode(draw(st.binary(min_size=64, max_size=64)))
        return kind, canonical_json(doc)
    if kind == "foreign_key_claimed":
        payload = b64decode(doc["payload"])
        return kind, canonical_json(envelope_dict(payload, STRANGER, keyid=ENROLLED.key_id))
    if kind == "unknown_key":
        return kind, make_sealed(STRANGER, 1).to_bytes()
    if kind == "revoked":
        return kind, make_sealed(REVOKED, 1).to_bytes()
    if kind == "wrong_types":
        field = draw(st.sampled_from(["payload", "payloadType", "signatures"]))
        doc[field] = draw(json_values)
        if draw(st.booleans()):
            doc[draw(st.text(max_size=5))] = draw(json_values)
        return kind, json.dumps(doc).encode()
    if kind == "random_json":
        return kind, json.dumps(draw(json_values)).encode()
    if kind == "signed_garbage":
        payload = json.dumps(draw(json_values)).encode()
        return kind, canonical_json(envelope_dict(payload))
    if kind == "signed_mutated_bundle":
        bundle = json.loads(b64decode(doc["payload"]))
        path = draw(
            st.sampled_from(
                [
                    ("manifest", "measurement_count"),
                    ("manifest", "asn"),
                    ("manifest", "country"),
                    ("manifest", "created_at"),
                    ("manifest", "format_version"),
                    ("measurements",),
                ]
            )
        )
        target = bundle
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = draw(json_values)
        return kind, canonical_json(envelope_dict(canonical_json(bundle)))
    if kind in ("asn_out_of_range", "not_a_number", "time_out_of_window", "other_network"):
        bundle = json.loads(b64decode(doc["payload"]))
        measurement = bundle["measurements"][draw(st.integers(0, 1))]
        if kind == "asn_out_of_range":
            asn = draw(st.sampled_from([2**32, 2**63, 2**64 + 1, -1]))
            bundle["manifest"]["asn"] = asn
            for m in bundle["measurements"]:
                m["vantage"]["asn"] = asn
        elif kind == "not_a_number":
            field = draw(st.sampled_from(["runtime", "verdict.confidence", "local.tcp.0.t"]))
            value = draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
            target = measurement
            *parents, last = field.split(".")
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            target[last] = value  # json.dumps writes NaN / Infinity
        elif kind == "time_out_of_window":
            moment = draw(
                st.sampled_from(
                    [
                        "9999-12-31T23:59:59-23:59",
                        "9999-12-31T23:59:59+23:59",
                        "0001-01-01T00:00:00+23:59",
                        "1970-01-01T00:00:00Z",
                        "2999-01-01T00:00:00+14:00",
                    ]
                )
            )
            if draw(st.booleans()):
                measurement["started_at"] = moment
            else:
                bundle["manifest"]["created_at"] = moment
        else:
            bundle["manifest"]["country"] = "IR"
            for m in bundle["measurements"]:
                m["vantage"]["country"] = "IR"
        payload = json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode()
        return kind, canonical_json(envelope_dict(payload))
    flipped = bytearray(b64decode(doc["payload"]))
    flipped[draw(st.integers(0, len(flipped) - 1))] ^= 1 << draw(st.integers(0, 7))
    doc["payload"] = b64encode(bytes(flipped))
    return kind, canonical_json(doc)


EXPECTED = {
    "valid": {200, 201},
    "random_bytes": {400},
    "truncated": {400},
    "oversized": {413},
    "forged_sig": {403},
    "foreign_key_claimed": {403},
    "unknown_key": {401},
    "revoked": {403},
    "wrong_types": {400},
    "random_json": {400},
    "signed_garbage": {422},
    "signed_mutated_bundle": {200, 201, 403, 422},  # a mutation may leave a valid bundle
    "bitflip_payload": {400, 403},
    "asn_out_of_range": {422},
    "not_a_number": {422},
    "time_out_of_window": {422},
    "other_network": {403},
}


def test_fuzzed_bundles(tmp_path: Path) -> None:
    """Every fuzzed body gets its expected 4xx (or 200/201 if valid); only valid ones stored."""
    settings_ = CollectorSettings(
        data_dir=tmp_path,
        max_bundle_bytes=LIMIT,
        rate_limit_burst=10**6,
        auth_failures_per_minute=10**6,
    )
    app = create_app(settings_)
    store: Store = app.state.store
    for key in (ENROLLED, REVOKED):
        raw = b64decode(key.public_key_b64)
        store.enroll(key.key_id, raw, network=("PK", key.asn), voucher=f"token:{key.key_id}")
    store.revoke(REVOKED.key_id, "test")
    accepted: dict[str, bytes] = {}
    seen: set[str] = set()

    async def send(body: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            return await client.post("/api/v1/bundles", content=body)

    @settings(
        max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(bodies())
    def check(case: tuple[str, bytes]) -> None:
        kind, body = case
        seen.add(kind)
        response = asyncio.run(send(body))
        assert response.status_code < 500, (kind, response.text)
        assert response.status_code in EXPECTED[kind], (kind, response.status_code, response.text)
        answer = response.json()
        if response.status_code >= 400:
            assert answer["error"] and answer["detail"]
        else:
            accepted[answer["digest"]] = body

    check()
    assert set(EXPECTED) == seen

    with store.engine.connect() as conn:
        stored = {row.digest: bytes(row.envelope) for row in conn.execute(select(bundles))}
        rows = conn.execute(select(measurements.c.bundle_digest)).all()
    assert set(accepted) == set(stored)
    for digest, envelope in stored.items():
        got, bundle = open_sealed(read_envelope(envelope))
        assert digest == got
        assert bundle.manifest.key_id == ENROLLED.key_id
    assert sum(
        open_sealed(read_envelope(e))[1].manifest.measurement_count for e in stored.values()
    ) == len(rows)
    assert len(stored) == store.log_size()


ROUTES = [
    ("POST", "/api/v1/probes"),
    ("POST", "/api/v1/probes/challenge"),
    ("POST", f"/api/v1/admin/probes/{'0' * 64}/revoke"),
    ("POST", f"/api/v1/admin/probes/{'0' * 64}/approve"),
    ("GET", "/api/v1/reports/reachability"),
    ("GET", "/api/v1/log/checkpoint"),
]


def test_fuzzed_requests_to_every_other_route(tmp_path: Path) -> None:
    """No body gets a 5xx; one over the limit, declared or streamed, gets 413 before parsing."""
    small = 4096
    app = create_app(
        CollectorSettings(data_dir=tmp_path, max_body_bytes=small, auth_failures_per_minute=10**6)
    )

    async def send(method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            return await client.request(method, path, content=body, headers=headers)

    async def chunks(n: int) -> Any:
        for _ in range(n):
            yield b"x" * 1024

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        st.sampled_from(ROUTES),
        st.sampled_from(["json", "bytes", "declared", "streamed"]),
        json_values,
        st.binary(max_size=200),
    )
    def check(route: tuple[str, str], how: str, value: Any, raw: bytes) -> None:
        method, path = route
        headers = {"content-type": "application/json", "authorization": "Bearer nope"}
        if how == "json":
            r = asyncio.run(send(method, path, json.dumps(value).encode(), headers))
        elif how == "bytes":
            r = asyncio.run(send(method, path, raw, headers))
        elif how == "declared":
            r = asyncio.run(send(method, path, b"{" * (small + 1), headers))
        else:
            r = asyncio.run(send(method, path, chunks(small // 1024 + 2), headers))
        assert r.status_code < 500, (route, how, r.text)
        if how in ("declared", "streamed"):
            assert 413 == r.status_code, (route, how, r.text)
            assert "too_large" == r.json()["error"]

    check()
