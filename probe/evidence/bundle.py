"""Making, sealing and opening bundles.

``build`` groups measurements from one network into a ``Bundle``, each shared fact once (a run's
canaries, certificates); ``seal`` serialises it once to canonical JSON, leaving out fields that hold
their default, and signs those bytes into a DSSE envelope; the sha256 of the payload bytes is the
bundle's digest. ``open_sealed`` checks an envelope against the key its manifest names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from probe import __version__
from probe.evidence.keys import ProbeKey
from probe.evidence.signing import (
    SignatureError,
    b64decode,
    canonical_json,
    envelope_payload,
    key_id,
    load_public_key,
    sign_envelope,
    verify_envelope,
)
from probe.model.bundle import PAYLOAD_TYPE, Bundle, Envelope, Manifest
from probe.model.measurement import Measurement
from probe.model.sharing import pack

SOFTWARE = f"blockprobe {__version__}"


@dataclass(frozen=True)
class SealedBundle:
    """A signed envelope and its digest (hex sha256 of the payload bytes)."""

    digest: str
    envelope: Envelope

    def to_bytes(self) -> bytes:
        """The envelope as the JSON bytes that are uploaded and stored."""
        return envelope_bytes(self.envelope)


def envelope_bytes(envelope: Envelope) -> bytes:
    return canonical_json(envelope.model_dump(mode="json"))


def payload_document(bundle: Bundle) -> dict[str, object]:
    """The JSON document signed: fields at their default left out, the manifest whole."""
    document = bundle.model_dump(mode="json", exclude_defaults=True)
    document["manifest"] = bundle.manifest.model_dump(mode="json")
    return document


def payload_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def build(
    measurements: Sequence[Measurement],
    key: ProbeKey,
    *,
    country: str | None = None,
    created_at: datetime | None = None,
) -> Bundle:
    """A bundle of ``measurements``, which must all come from the key's network."""
    if measurements:
        country = measurements[0].vantage.country
    for m in measurements:
        if m.vantage.asn != key.asn:
            raise ValueError(
                f"measurement {m.measurement_id} is from AS{m.vantage.asn},"
                f" the key is for AS{key.asn}"
            )
    manifest = Manifest(
        key_id=key.key_id,
        public_key=key.public_key_b64,
        created_at=created_at or datetime.now(UTC),
        country=country,
        asn=key.asn,
        software=SOFTWARE,
        measurement_count=len(measurements),
    )
    packed, canaries, certificates = pack(measurements)
    return Bundle(
        manifest=manifest, measurements=packed, canaries=canaries, certificates=certificates
    )


def seal(bundle: Bundle, key: ProbeKey) -> SealedBundle:
    """Serialise ``bundle`` once and sign the bytes."""
    if bundle.manifest.key_id != key.key_id:
        raise ValueError("the manifest names another key")
    payload = canonical_json(payload_document(bundle))
    envelope = sign_envelope(payload, PAYLOAD_TYPE, key.private_key)
    return SealedBundle(payload_digest(payload), envelope)


def read_envelope(data: bytes) -> Envelope:
    """Parse envelope JSON bytes (raises pydantic.ValidationError)."""
    return Envelope.model_validate_json(data)


def open_sealed(envelope: Envelope) -> tuple[str, Bundle]:
    """Verify ``envelope`` under the key its manifest carries; return (digest, bundle).

    This proves the bundle is intact and signed by the key with id ``manifest.key_id``; whether
    that key belongs to an enrolled probe is the collector's question.
    """
    bundle = Bundle.model_validate_json(envelope_payload(envelope))
    public_key = load_public_key(b64decode(bundle.manifest.public_key))
    if key_id(public_key) != bundle.manifest.key_id:
        raise SignatureError("manifest key_id is not the hash of its public key")
    payload = verify_envelope(envelope, public_key, PAYLOAD_TYPE)
    return payload_digest(payload), bundle
