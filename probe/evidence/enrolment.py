"""The enrolment proof shared by the probe and the collector: what the probe's key signs.

The collector hands out a fresh challenge; the probe signs, with the key it enrols, one line that
binds the challenge, the key and the network the key is for. A key can only be enrolled by whoever
holds its private half, and only for the network it names.
"""

from __future__ import annotations

ENROL_CONTEXT = b"blockprobe-enrol-v1"


def enrolment_message(
    challenge: str, public_key: str, country: str | None, asn: int | None
) -> bytes:
    """The bytes the enrolling key signs (``public_key`` and ``challenge`` as sent, base64)."""
    network = f"{country or 'ZZ'}/AS{'?' if asn is None else asn}"
    return b"\n".join([ENROL_CONTEXT, challenge.encode(), public_key.encode(), network.encode()])
