"""Enrolment that binds: a fresh challenge signed by the key, a key worth trusting, one network.

The collector hands out challenges it can check without storing them (an HMAC over a time and a
random nonce, keyed by a secret all workers derive from the log key), valid for
``CHALLENGE_TTL`` seconds. An enrolment request carries the key, the network (country and ASN) it
is bound to, a challenge, the key's signature over ``probe.evidence.enrolment.enrolment_message``
and, depending on the policy, a token:

- ``approval`` (the default): a valid token enrols at once; without one the key waits, pending,
  until an administrator approves it (``POST /api/v1/admin/probes/{key_id}/approve``);
- ``token``: a valid token is required;
- ``open``: any key that proves possession enrols (for labs; anyone can mint votes).

Small-order and non-canonical keys are refused (``probe.evidence.pubkeys``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import Field, SecretStr

from probe.evidence.enrolment import enrolment_message
from probe.evidence.pubkeys import WeakKeyError, check_public_key
from probe.evidence.signing import SignatureError, b64decode, b64encode, load_public_key
from probe.model.base import FrozenModel

Policy = Literal["approval", "token", "open"]
CHALLENGE_TTL = 300.0  # seconds a challenge stays valid
_NONCE = 16
_STAMP = struct.Struct(">Q")


class EnrollRequest(FrozenModel):
    """A probe key to enrol, the network it is for, and the proof that the enroller holds it."""

    public_key: str = Field(max_length=100)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    challenge: str = Field(max_length=200)
    signature: str = Field(max_length=200)
    token: SecretStr | None = Field(default=None, max_length=200)


class EnrolmentRefused(Exception):
    """An enrolment request that fails a check: HTTP status, error code, detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class Challenges:
    """Stateless challenges: ``stamp || nonce || HMAC(secret, stamp || nonce)``, base64."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    @classmethod
    def from_log_key(cls, log_key: Ed25519PrivateKey) -> Challenges:
        """Challenges keyed by a secret derived from the log key, which every worker shares."""
        raw = log_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(hashlib.sha256(b"blockprobe enrolment challenges\n" + raw).digest())

    def issue(self) -> str:
        body = _STAMP.pack(int(self._clock() * 1000)) + os.urandom(_NONCE)
        return b64encode(body + self._mac(body))

    def check(self, challenge: str) -> None:
        """Raise ``EnrolmentRefused`` unless ``challenge`` was issued here and is still fresh."""
        try:
            data = b64decode(challenge)
        except SignatureError:
            data = b""
        body, mac = data[: _STAMP.size + _NONCE], data[_STAMP.size + _NONCE :]
        if len(mac) != 32 or not hmac.compare_digest(mac, self._mac(body)):
            raise EnrolmentRefused(400, "bad_challenge", "the challenge was not issued here")
        (issued_ms,) = _STAMP.unpack(body[: _STAMP.size])
        age = self._clock() - issued_ms / 1000
        if not -5.0 <= age <= CHALLENGE_TTL:
            raise EnrolmentRefused(
                400, "stale_challenge", f"challenges are valid for {CHALLENGE_TTL:.0f} s"
            )

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()


@dataclass(frozen=True)
class Admission:
    """A key that proved possession: its raw bytes and whether it is approved at once."""

    public_key: bytes
    approved: bool


def admit(
    request: EnrollRequest, policy: Policy, tokens: tuple[SecretStr, ...], challenges: Challenges
) -> Admission:
    """Check a request: token per ``policy``, key quality, challenge, proof of possession."""
    given = request.token.get_secret_value().encode() if request.token else b""
    token_ok = bool(given) and any(
        hmac.compare_digest(given, t.get_secret_value().encode()) for t in tokens
    )
    if request.token is not None and not token_ok:
        raise EnrolmentRefused(403, "bad_token", "the enrolment token is not valid")
    if policy == "token" and not token_ok:
        raise EnrolmentRefused(403, "token_required", "enrolment needs a valid token")
    try:
        raw = b64decode(request.public_key)
        check_public_key(raw)
        public = load_public_key(raw)
    except (SignatureError, WeakKeyError) as exc:
        raise EnrolmentRefused(400, "bad_key", f"public_key: {exc}") from None
    challenges.check(request.challenge)
    message = enrolment_message(request.challenge, request.public_key, request.country, request.asn)
    try:
        public.verify(b64decode(request.signature), message)
    except (InvalidSignature, SignatureError):
        raise EnrolmentRefused(
            403, "bad_proof", "the signature over the challenge does not verify with this key"
        ) from None
    return Admission(raw, approved=token_ok or policy == "open")
