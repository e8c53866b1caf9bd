"""Checking one bundle as evidence: its signature by an enrolled key, and its place in the log.

The same checks serve the collector's evidence pages, the dashboard's written pages and
``blockprobe verify`` on an evidence pack: each takes the envelope bytes, the enrolled public key
of its signer and, when there is one, an inclusion proof against a signed checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from probe.evidence.bundle import read_envelope
from probe.evidence.signing import (
    SignatureError,
    b64decode,
    envelope_payload,
    key_id,
    load_public_key,
    verify_envelope,
)
from probe.model.bundle import PAYLOAD_TYPE, Bundle
from translog import merkle
from translog.checkpoint import Checkpoint


@dataclass(frozen=True)
class Inclusion:
    """An RFC 6962 audit path of a bundle digest in the log tree of ``size`` leaves."""

    leaf_index: int
    size: int
    proof: tuple[bytes, ...]


@dataclass
class BundleCheck:
    """What checking a bundle found; ``ok`` only when every check that could run passed."""

    digest: str
    bundle: Bundle | None = None
    signer: str | None = None  # the enrolled key that verified the signature
    signature_ok: bool = False
    signature: str = ""  # what the signature check found, in words
    inclusion_ok: bool | None = None  # None: no proof was checked
    inclusion: str = "not checked"
    checkpoint: Checkpoint | None = None
    leaf_index: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature_ok and self.inclusion_ok is not False and not self.problems


def check_bundle(
    data: bytes,
    enrolled_key: bytes | None,
    inclusion: Inclusion | None = None,
    checkpoint: Checkpoint | None = None,
) -> BundleCheck:
    """Check envelope ``data`` against the signer's enrolled key and the log."""
    try:
        envelope = read_envelope(data)
        payload = envelope_payload(envelope)
    except (ValidationError, SignatureError, ValueError) as exc:
        return BundleCheck("", signature=f"not a DSSE envelope: {exc}", problems=["malformed"])
    digest = hashlib.sha256(payload).hexdigest()
    check = BundleCheck(digest)
    try:
        check.bundle = Bundle.model_validate_json(payload)
    except ValidationError as exc:
        check.problems.append(f"the payload is not a bundle: {exc.error_count()} errors")
    if enrolled_key is None:
        check.signature = "no enrolled key for the signer is known here"
    else:
        try:
            public = load_public_key(enrolled_key)
            verify_envelope(envelope, public, PAYLOAD_TYPE)
        except SignatureError as exc:
            check.signature = f"INVALID: {exc}"
        else:
            check.signer = key_id(public)
            check.signature_ok = True
            check.signature = f"valid Ed25519 signature by enrolled key {check.signer}"
            manifest = check.bundle.manifest if check.bundle else None
            if manifest is not None and (
                manifest.key_id != check.signer or b64decode(manifest.public_key) != enrolled_key
            ):
                check.problems.append("the manifest names a key other than the signer's")
    if inclusion is not None and checkpoint is not None:
        check.checkpoint = checkpoint
        check.leaf_index = inclusion.leaf_index
        leaf = merkle.leaf_hash(bytes.fromhex(digest))
        if inclusion.size != checkpoint.size:
            check.inclusion_ok = False
            check.inclusion = (
                f"the proof is for a tree of {inclusion.size}, the checkpoint of {checkpoint.size}"
            )
        elif merkle.verify_inclusion(
            leaf, inclusion.leaf_index, checkpoint.size, inclusion.proof, checkpoint.root
        ):
            check.inclusion_ok = True
            check.inclusion = (
                f"leaf {inclusion.leaf_index} of the log's signed checkpoint of size"
                f" {checkpoint.size} (root {checkpoint.root.hex()[:16]}...): the proof verifies"
            )
        else:
            check.inclusion_ok = False
            check.inclusion = "INVALID: the inclusion proof does not lead to the checkpoint's root"
    return check
