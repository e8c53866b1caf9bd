"""Bundles store each shared fact once (a run's canaries, certificates) and give them back whole."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from collectors.ingest import measurement_rows
from probe.evidence.bundle import build, open_sealed, payload_document, read_envelope, seal
from probe.evidence.signing import canonical_json, sign_envelope
from probe.model import (
    Certificate,
    HTTPObservation,
    Measurement,
    Observations,
    TLSHandshakeObservation,
)
from probe.model.bundle import PAYLOAD_TYPE, Bundle, Manifest
from tests.collectors.factories import T0, make_key, make_measurement

PEM = "-----BEGIN CERTIFICATE-----\n" + "A" * 800 + "\n-----END CERTIFICATE-----\n"
CERT = Certificate(subject="CN=x.com", issuer="CN=CA", sans=("x.com",), chain_pem=(PEM,))


def _handshake(sni: str, control: bool = False) -> TLSHandshakeObservation:
    return TLSHandshakeObservation(
        ip="198.18.100.10", sni=sni, control=control, cert_valid=True, certificate=CERT, t0=0, t=1
    )


CANARIES = {
    "example.org": Observations(
        tls=(_handshake("example.org"),),
        http=(HTTPObservation(url="https://example.org/", status=200, t0=0.1, t=0.2),),
    )
}


def _run(n: int) -> list[Measurement]:
    """``n`` measurements of one run: the same canaries, the same certificate four times each."""
    local = Observations(tls=(_handshake("x.com"), _handshake("example.org", control=True)))
    return [
        make_measurement(i).model_copy(
            update={"local": local, "control": local, "canaries": CANARIES}
        )
        for i in range(n)
    ]


def test_shared_facts_are_stored_once_and_given_back_whole() -> None:
    key = make_key()
    measurements = _run(5)
    sealed = seal(build(measurements, key, created_at=T0), key)
    payload = base64.b64decode(read_envelope(sealed.to_bytes()).payload)
    assert 1 == payload.count(b"A" * 800)  # the certificate once, not 21 times
    assert 1 == payload.count(b'"https://example.org/"')  # the canaries once, not 5 times
    document = json.loads(payload)
    assert {"run1"} == set(document["canaries"])
    assert all(m["canaries_ref"] == "run1" for m in document["measurements"])

    digest, bundle = open_sealed(read_envelope(sealed.to_bytes()))
    assert sealed.digest == digest
    assert measurements == list(bundle.full_measurements())


def test_the_collector_stores_each_measurement_whole() -> None:
    key = make_key()
    bundle = build(_run(2), key, created_at=T0)
    for row in measurement_rows(bundle):
        body = json.loads(str(row["body"]))
        assert body["canaries"]["example.org"]["http"][0]["status"] == 200
        assert body["local"]["tls"][0]["certificate"]["chain_pem"] == [PEM]


def test_a_reference_to_nothing_is_refused() -> None:
    key = make_key()
    document = payload_document(build(_run(2), key, created_at=T0))
    del document["canaries"]
    with pytest.raises(ValidationError, match="canaries run1"):
        Bundle.model_validate(document)
    document = payload_document(build(_run(2), key, created_at=T0))
    (ref,) = document["certificates"]
    document["certificates"][ref]["subject"] = "CN=someone.else"
    with pytest.raises(ValidationError, match="not named by its hash"):
        Bundle.model_validate(document)


def test_a_format_1_bundle_still_opens_whole() -> None:
    """A bundle sealed before the sharing (every measurement with its canaries) still reads."""
    key = make_key()
    measurements = _run(2)
    manifest = Manifest(
        format_version="1",
        key_id=key.key_id,
        public_key=key.public_key_b64,
        created_at=T0,
        country="PK",
        asn=key.asn,
        software="blockprobe 0.1.0",
        measurement_count=2,
    )
    old = {
        "manifest": manifest.model_dump(mode="json"),
        "measurements": [
            {k: v for k, v in m.model_dump(mode="json").items() if k != "canaries_ref"}
            for m in measurements
        ],
    }
    envelope = sign_envelope(canonical_json(old), PAYLOAD_TYPE, key.private_key)
    _, bundle = open_sealed(envelope)
    assert measurements == list(bundle.full_measurements())
