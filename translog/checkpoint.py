"""Signed checkpoints of the transparency log, as C2SP signed notes.

The note body is ``<origin>\\n<size>\\n<base64 root>\\n``; the signature line is
``\\u2014 <origin> <base64(key hash[:4] || Ed25519 signature)>``, where the key hash is
``sha256(origin || "\\n" || 0x01 || raw public key)`` (C2SP ``signed-note``, Ed25519 type 0x01).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """The log's size and root hash at one moment, named by the log's origin."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def note_key_hash(origin: str, key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(origin.encode() + b"\n\x01" + raw_public_key(key)).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The checkpoint as a signed note."""
    body = checkpoint.body()
    sig = note_key_hash(checkpoint.origin, key.public_key()) + key.sign(body.encode())
    return f"{body}\n{_DASH} {checkpoint.origin} {base64.b64encode(sig).decode()}\n"


def verify_checkpoint(note: str, key: Ed25519PublicKey, origin: str) -> Checkpoint:
    """Parse ``note`` and check its signature by ``key`` for ``origin``; raise ValueError if not."""
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note: no blank line before the signatures")
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4 or lines[0] != origin:
        raise ValueError(f"checkpoint is not for origin {origin!r}")
    try:
        checkpoint = Checkpoint(origin, int(lines[1]), base64.b64decode(lines[2], validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed checkpoint body: {exc}") from None
    want = note_key_hash(origin, key)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != origin:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        if raw[:4] != want:
            continue
        try:
            key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise ValueError("checkpoint signature does not verify") from None
        return checkpoint
    raise ValueError("no signature by the expected key")


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The key's 32 raw bytes (what its key id hashes)."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
