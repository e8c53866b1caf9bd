"""Bundles: the signed unit a probe uploads (a manifest plus measurements) and its DSSE envelope.

A ``Bundle`` is serialised once to canonical JSON bytes; those bytes are the payload of a DSSE
``Envelope`` (payloadType ``application/vnd.blockprobe.bundle+json``), and their sha256 is the
bundle's digest and id. The manifest names the network (country, ASN) but never the probe's address.

Format 2 stores each shared fact once (``probe.model.sharing``): the canary observations of a run
in ``canaries`` and certificates (with their chains) in ``certificates``, which measurements name by
reference; ``Bundle.full_measurements`` gives them back whole. Format 1 bundles (canaries inside
every measurement) are still read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from probe.model.base import WireModel
from probe.model.measurement import Measurement, Observations
from probe.model.observations import Certificate
from probe.model.sharing import certificate_ref, references, unpack

PAYLOAD_TYPE = "application/vnd.blockprobe.bundle+json"
FORMAT_VERSION: Literal["2"] = "2"

_KEY_ID = r"^[0-9a-f]{64}$"
_BASE64 = r"^[A-Za-z0-9+/_-]*={0,2}$"


class Manifest(WireModel):
    """What a bundle says about itself: format, signing key, time, network and contents."""

    format_version: Literal["1", "2"] = FORMAT_VERSION
    key_id: str = Field(pattern=_KEY_ID)  # hex sha256 of the raw Ed25519 public key
    public_key: str = Field(pattern=_BASE64, min_length=43, max_length=44)  # raw key, base64
    created_at: AwareDatetime
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    software: str = Field(min_length=1, max_length=100)  # e.g. "blockprobe 0.1.0"
    measurement_count: int = Field(ge=0)


class Bundle(WireModel):
    """A manifest and the measurements it covers, all taken from one network."""

    manifest: Manifest
    measurements: tuple[Measurement, ...]
    canaries: dict[str, dict[str, Observations]] = Field(default_factory=dict)  # by reference
    certificates: dict[str, Certificate] = Field(default_factory=dict)  # by a hash of their facts

    def full_measurements(self) -> tuple[Measurement, ...]:
        """The measurements with the canaries and certificates they refer to put back."""
        return unpack(self.measurements, self.canaries, self.certificates)

    @model_validator(mode="after")
    def _references_resolve(self) -> Bundle:
        canary_refs, cert_refs = references(self.measurements, self.canaries)
        if missing := sorted(canary_refs - self.canaries.keys()):
            raise ValueError(f"canaries {', '.join(missing)} are referred to but not in the bundle")
        if missing := sorted(cert_refs - self.certificates.keys()):
            raise ValueError(f"certificates {', '.join(missing)} are referred to but not stored")
        for ref, certificate in self.certificates.items():
            if certificate_ref(certificate) != ref:
                raise ValueError(f"certificate {ref} is not named by its hash")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Bundle:
        if self.manifest.measurement_count != len(self.measurements):
            raise ValueError(
                f"manifest counts {self.manifest.measurement_count} measurements,"
                f" the bundle holds {len(self.measurements)}"
            )
        for m in self.measurements:
            if (m.vantage.country, m.vantage.asn) != (self.manifest.country, self.manifest.asn):
                raise ValueError(
                    f"measurement {m.measurement_id} is from {m.vantage.country}/AS{m.vantage.asn},"
                    f" the manifest from {self.manifest.country}/AS{self.manifest.asn}"
                )
        return self


class Signature(WireModel):
    """One DSSE signature: ``keyid`` is an unauthenticated hint, ``sig`` base64."""

    keyid: str = Field(pattern=r"^[!-~]*$", max_length=128)  # printable ASCII
    sig: str = Field(pattern=_BASE64, max_length=256)


class Envelope(WireModel):
    """A DSSE v1 envelope: base64 payload, its type, and one or more signatures."""

    payload: str = Field(pattern=_BASE64)
    payloadType: str = Field(max_length=200)  # DSSE wire name
    signatures: tuple[Signature, ...] = Field(min_length=1, max_length=8)
