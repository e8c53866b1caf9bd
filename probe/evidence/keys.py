"""Probe keys: one Ed25519 key per probe and per network (ASN) it measures from.

A key used on every network would let anyone holding the published data follow a volunteer from
home to work; a per-network key links measurements only within one network (OONI's network-local
pseudonyms). Keys live in ``<state>/keys/`` as PEM files with mode 0600.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the cryptography library is loaded when a key is first used (idle RSS)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


@dataclass(frozen=True)
class ProbeKey:
    """A probe's signing key for one network (``asn`` None when the network is unknown)."""

    private_key: Ed25519PrivateKey
    asn: int | None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """Hex sha256 of the raw public key."""
        from probe.evidence.signing import key_id

        return key_id(self.public_key)

    @property
    def public_key_b64(self) -> str:
        """The raw public key in base64, as enrolment and manifests carry it."""
        from probe.evidence.signing import b64encode, raw_public_key

        return b64encode(raw_public_key(self.public_key))


class KeyStore:
    """The keys of one probe, one per network, under ``state_dir/keys``."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "keys"

    def path_for(self, asn: int | None) -> Path:
        name = "unknown-network" if asn is None else f"as{asn}"
        return self.directory / f"{name}.pem"

    def for_network(self, asn: int | None) -> ProbeKey:
        """The key for ``asn``, created on first use."""
        from probe.evidence.signing import load_or_create_private_key

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return ProbeKey(load_or_create_private_key(self.path_for(asn)), asn)

    def all(self) -> list[ProbeKey]:
        """Every key this probe holds."""
        from probe.evidence.signing import load_or_create_private_key

        keys = []
        for path in sorted(self.directory.glob("*.pem")):
            stem = path.stem
            asn = int(stem[2:]) if stem.startswith("as") and stem[2:].isdigit() else None
            keys.append(ProbeKey(load_or_create_private_key(path), asn))
        return keys
