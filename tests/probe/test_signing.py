"""DSSE signing: PAE, key files, and acceptance by a third-party verifier (securesystemslib)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope as SSlibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from probe.evidence.bundle import open_sealed, read_envelope
from probe.evidence.keys import KeyStore
from probe.evidence.signing import (
    SignatureError,
    b64decode,
    b64encode,
    canonical_json,
    key_id,
    load_or_create_private_key,
    pae,
    raw_public_key,
    sign_envelope,
    verify_envelope,
)
from probe.model.bundle import PAYLOAD_TYPE
from tests.collectors.factories import make_key, make_sealed


def sslib_key(public_raw: bytes, kid: str) -> SSlibKey:
    return SSlibKey(kid, "ed25519", "ed25519", {"public": public_raw.hex()})


def test_pae_matches_the_dsse_test_vector() -> None:
    """PAE of the DSSE spec's example."""
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert expected == pae("http://example.com/HelloWorld", b"hello world")


def test_securesystemslib_accepts_our_envelope() -> None:
    """securesystemslib's DSSE verifier accepts a sealed bundle and returns our payload."""
    key = make_key()
    sealed = make_sealed(key, 2)
    doc = json.loads(sealed.to_bytes())
    envelope = SSlibEnvelope.from_dict(doc)
    public = sslib_key(raw_public_key(key.public_key), key.key_id)
    accepted = envelope.verify([public], 1)
    assert [key.key_id] == list(accepted)
    assert PAYLOAD_TYPE == envelope.payload_type
    assert b64decode(sealed.envelope.payload) == envelope.pae()[-len(envelope.payload) :]


def test_securesystemslib_rejects_a_tampered_envelope() -> None:
    """Changing one payload byte makes the third-party verifier refuse it."""
    key = make_key()
    doc = json.loads(make_sealed(key).to_bytes())
    payload = bytearray(b64decode(doc["payload"]))
    payload[10] ^= 1
    doc["payload"] = b64encode(bytes(payload))
    with pytest.raises(VerificationError):
        SSlibEnvelope.from_dict(doc).verify(
            [sslib_key(raw_public_key(key.public_key), key.key_id)], 1
        )


def test_an_envelope_signed_by_securesystemslib_verifies_here() -> None:
    """The other direction: our verifier accepts an envelope produced by securesystemslib."""
    from securesystemslib.signer import CryptoSigner

    key = make_key()
    signer = CryptoSigner(key.private_key)
    envelope = SSlibEnvelope(b'{"a":1}', PAYLOAD_TYPE, {})
    envelope.sign(signer)
    ours = read_envelope(json.dumps(envelope.to_dict()).encode())
    assert b'{"a":1}' == verify_envelope(ours, key.public_key, PAYLOAD_TYPE)


def test_verify_refuses_wrong_key_type_and_payload() -> None:
    """Wrong key, wrong payloadType and tampered payload all raise SignatureError."""
    key, other = make_key(), make_key()
    envelope = sign_envelope(b"data", PAYLOAD_TYPE, key.private_key)
    with pytest.raises(SignatureError):
        verify_envelope(envelope, other.public_key, PAYLOAD_TYPE)
    with pytest.raises(SignatureError, match="payloadType"):
        verify_envelope(envelope, key.public_key, "application/json")
    tampered = envelope.model_copy(update={"payload": b64encode(b"dat4")})
    with pytest.raises(SignatureError):
        verify_envelope(tampered, key.public_key, PAYLOAD_TYPE)


def test_urlsafe_unpadded_base64_is_accepted() -> None:
    """DSSE allows URL-safe base64; both decode to the same bytes."""
    data = bytes(range(250))
    std = b64encode(data)
    url = std.replace("+", "-").replace("/", "_").rstrip("=")
    assert data == b64decode(std) == b64decode(url)
    with pytest.raises(SignatureError):
        b64decode("a")


def test_open_sealed_checks_the_embedded_key() -> None:
    """open_sealed returns digest and bundle, and refuses a manifest key that lies."""
    key = make_key()
    sealed = make_sealed(key)
    digest, bundle = open_sealed(sealed.envelope)
    assert sealed.digest == digest
    assert key.key_id == bundle.manifest.key_id
    raw = json.loads(b64decode(sealed.envelope.payload))
    raw["manifest"]["key_id"] = "0" * 64
    forged = sign_envelope(canonical_json(raw), PAYLOAD_TYPE, key.private_key)
    with pytest.raises(SignatureError, match="key_id"):
        open_sealed(forged)


def test_keys_are_per_network_private_and_stable(tmp_path: Path) -> None:
    """One key per ASN, mode 0600 in a 0700 directory, loaded back identically."""
    store = KeyStore(tmp_path)
    a1, a2, unknown = store.for_network(1), store.for_network(2), store.for_network(None)
    assert len({a1.key_id, a2.key_id, unknown.key_id}) == 3
    assert a1.key_id == KeyStore(tmp_path).for_network(1).key_id
    assert 0o600 == store.path_for(1).stat().st_mode & 0o777
    assert 0o700 == store.directory.stat().st_mode & 0o777
    assert {1, 2, None} == {k.asn for k in store.all()}
    assert key_id(a1.public_key) == a1.key_id
    assert 64 == len(a1.key_id)


def test_key_file_creation_keeps_an_existing_key(tmp_path: Path) -> None:
    """Creating a key where one exists keeps the existing one (no overwrite)."""
    path = tmp_path / "k.pem"
    first = load_or_create_private_key(path)
    second = load_or_create_private_key(path)
    assert raw_public_key(first.public_key()) == raw_public_key(second.public_key())
    assert [path] == list(tmp_path.iterdir())
