"""Each fact once: what a bundle's measurements share is stored once and referred to.

Every measurement of a run carries the same canary observations, and the same certificate comes
back from many handshakes (both SNIs, every address, both vantages). ``pack`` moves them into two
tables, canary sets by a short reference and certificates by a prefix of their sha256, and leaves
references in the measurements; ``unpack`` puts them back, giving the measurements as they were
measured.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence

from probe.model.measurement import Measurement, Observations
from probe.model.observations import Certificate, TLSHandshakeObservation

REF_HEX = 16  # hex digits of sha256 naming a certificate (64 bits: unique within a bundle)

CanarySets = dict[str, dict[str, Observations]]
Certificates = dict[str, Certificate]
Change = Callable[[TLSHandshakeObservation], TLSHandshakeObservation]


def certificate_ref(certificate: Certificate) -> str:
    """The name of a certificate in a bundle's ``certificates`` table: a hash of its facts."""
    text = json.dumps(certificate.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:REF_HEX]


def pack(
    measurements: Sequence[Measurement],
) -> tuple[tuple[Measurement, ...], CanarySets, Certificates]:
    """The measurements with references, the canary sets and the certificates they refer to."""
    canaries: CanarySets = {}
    certificates: Certificates = {}

    def stash(handshake: TLSHandshakeObservation) -> TLSHandshakeObservation:
        if handshake.certificate is None:
            return handshake
        ref = certificate_ref(handshake.certificate)
        certificates[ref] = handshake.certificate
        return handshake.model_copy(update={"certificate": None, "certificate_ref": ref})

    def canary_ref(found: dict[str, Observations]) -> str:
        packed = {name: _map_handshakes(obs, stash) for name, obs in found.items()}
        for ref, known in canaries.items():
            if known == packed:
                return ref
        ref = f"run{len(canaries) + 1}"
        canaries[ref] = packed
        return ref

    packed = tuple(
        m.model_copy(
            update={
                "local": _map_handshakes(m.local, stash),
                "control": None if m.control is None else _map_handshakes(m.control, stash),
                "canaries": {},
                "canaries_ref": canary_ref(m.canaries) if m.canaries else m.canaries_ref,
            }
        )
        for m in measurements
    )
    return packed, canaries, certificates


def unpack(
    measurements: Sequence[Measurement],
    canaries: Mapping[str, Mapping[str, Observations]],
    certificates: Mapping[str, Certificate],
) -> tuple[Measurement, ...]:
    """The measurements with every reference replaced by what it names (KeyError if unknown)."""

    def restore(handshake: TLSHandshakeObservation) -> TLSHandshakeObservation:
        if handshake.certificate_ref is None:
            return handshake
        certificate = certificates[handshake.certificate_ref]
        return handshake.model_copy(update={"certificate": certificate, "certificate_ref": None})

    def full(m: Measurement) -> Measurement:
        shared = canaries[m.canaries_ref] if m.canaries_ref is not None else m.canaries
        return m.model_copy(
            update={
                "local": _map_handshakes(m.local, restore),
                "control": None if m.control is None else _map_handshakes(m.control, restore),
                "canaries": {name: _map_handshakes(obs, restore) for name, obs in shared.items()},
                "canaries_ref": None,
            }
        )

    return tuple(full(m) for m in measurements)


def references(
    measurements: Sequence[Measurement], canaries: Mapping[str, Mapping[str, Observations]]
) -> tuple[set[str], set[str]]:
    """(canary references, certificate references) the measurements and canary sets use."""
    canary_refs = {m.canaries_ref for m in measurements if m.canaries_ref is not None}
    observations = [
        obs
        for m in measurements
        for obs in (m.local, m.control, *m.canaries.values())
        if obs is not None
    ]
    observations += [obs for found in canaries.values() for obs in found.values()]
    cert_refs = {
        h.certificate_ref for obs in observations for h in obs.tls if h.certificate_ref is not None
    }
    return canary_refs, cert_refs


def _map_handshakes(observations: Observations, change: Change) -> Observations:
    """``observations`` with ``change`` applied to every TLS handshake."""
    if not observations.tls:
        return observations
    return observations.model_copy(update={"tls": tuple(change(h) for h in observations.tls)})
