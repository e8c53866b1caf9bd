"""Ed25519 signing of DSSE envelopes, shared by the probe and the collector.

``SIG = Ed25519(PAE(payloadType, payload))`` with DSSE's pre-authentication encoding. Key ids are
the hex sha256 of the raw 32-byte public key. Private keys live in PEM files created with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from probe.model.bundle import Envelope, Signature


class SignatureError(ValueError):
    """An envelope whose signature does not verify, or that cannot be decoded."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` with its type."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Hex sha256 of the raw public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (DSSE accepts both)."""
    text = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"invalid base64: {exc}") from None


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes."""
    if len(raw) != 32:
        raise SignatureError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_envelope(payload: bytes, payload_type: str, key: Ed25519PrivateKey) -> Envelope:
    """Sign ``payload`` into a DSSE envelope with one signature."""
    sig = key.sign(pae(payload_type, payload))
    return Envelope(
        payload=b64encode(payload),
        payloadType=payload_type,
        signatures=(Signature(keyid=key_id(key.public_key()), sig=b64encode(sig)),),
    )


def envelope_payload(envelope: Envelope) -> bytes:
    """The decoded payload bytes (not verified)."""
    return b64decode(envelope.payload)


def verify_envelope(envelope: Envelope, key: Ed25519PublicKey, payload_type: str) -> bytes:
    """Return the payload if a signature of ``envelope`` verifies under ``key``; else raise."""
    if envelope.payloadType != payload_type:
        raise SignatureError(f"payloadType {envelope.payloadType!r}, expected {payload_type!r}")
    message = pae(envelope.payloadType, envelope_payload(envelope))
    kid = key_id(key)
    # keyid is only a hint: try the matching signatures first, then the others.
    ordered = sorted(envelope.signatures, key=lambda s: s.keyid != kid)
    for signature in ordered:
        try:
            key.verify(b64decode(signature.sig), message)
        except (InvalidSignature, SignatureError):
            continue
        return envelope_payload(envelope)
    raise SignatureError(f"no signature verifies under key {kid}")


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at ``path``, creating it (mode 0600, atomically) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process created the key first: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
