"""Verdicts: the classifier's answer for one endpoint, in the vocabulary of docs/verdicts.md.

``Verdict.method`` is ``stage.outcome`` (``tls.reset``, ``throttle.rate``, ``outage.local``) or None
for reachable and inconclusive. The names are an external contract: extend, never rename.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field

from probe.model.base import WireModel
from probe.model.methods import Method
from probe.model.observations import Direction

VerdictKind = Literal["reachable", "blocked", "throttled", "outage", "inconclusive"]
Family = Literal["ipv4", "ipv6"]
# The verdicts in the contract's order: the column order of the collector's per-verdict counts.
VERDICTS: tuple[VerdictKind, ...] = get_args(VerdictKind)

# Worst first: a platform summary takes the worst endpoint verdict.
SEVERITY: tuple[VerdictKind, ...] = ("blocked", "throttled", "outage", "inconclusive", "reachable")

METHODS: dict[str, VerdictKind] = {
    Method.DNS_NXDOMAIN: "blocked",
    Method.DNS_SERVFAIL: "blocked",
    Method.DNS_REFUSED: "blocked",
    Method.DNS_BOGON: "blocked",
    Method.DNS_SPOOFED: "blocked",
    Method.DNS_INJECTED: "blocked",
    Method.DNS_TIMEOUT: "blocked",
    Method.TCP_TIMEOUT: "blocked",
    Method.TCP_RESET: "blocked",
    Method.TCP_UNREACHABLE: "blocked",
    Method.TLS_RESET: "blocked",
    Method.TLS_TIMEOUT: "blocked",
    Method.TLS_EOF: "blocked",
    Method.TLS_ALERT: "blocked",
    Method.TLS_MITM: "blocked",
    Method.HTTP_RESET: "blocked",
    Method.HTTP_TIMEOUT: "blocked",
    Method.HTTP_EOF: "blocked",
    Method.HTTP_BLOCKPAGE: "blocked",
    Method.HTTP_REDIRECT: "blocked",
    Method.QUIC_TIMEOUT: "blocked",
    Method.QUIC_CLOSED: "blocked",
    Method.THROTTLE_RATE: "throttled",
    Method.THROTTLE_STALL: "throttled",
    Method.OUTAGE_LOCAL: "outage",
    Method.OUTAGE_PLATFORM: "outage",
    Method.OUTAGE_DNS: "outage",
}


class _AliasedWire(WireModel):
    """A wire model whose Python names differ from its JSON names: both read, JSON's written."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class ThroughputSummary(WireModel):
    """The contract's ``throughput`` object for an endpoint that transferred data."""

    bytes: int
    seconds: float
    kbps: float
    control_kbps: float | None = None
    ratio: float | None = None
    samples: tuple[tuple[float, int], ...] = ()
    direction: Direction = "down"


class Http3Verdict(_AliasedWire):
    """The contract's ``http3`` object: an endpoint's HTTP/3 (QUIC) result, judged on its own.

    It never changes the endpoint's own verdict, which is about HTTPS over TCP: a QUIC-only block
    shows here and in the platform summary's evidence (docs/verdicts.md, "HTTP/3").
    """

    kind: VerdictKind = Field(alias="verdict")
    method: Method | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()

    def model_post_init(self, __context: object) -> None:
        """Refuse a method that does not belong to the verdict (a programming error)."""
        if self.method is not None and METHODS.get(self.method) != self.kind:
            raise ValueError(f"method {self.method!r} does not go with verdict {self.kind!r}")


class FamilyVerdict(_AliasedWire):
    """One address family's verdict for an endpoint measured over both (the contract's
    ``families.ipv4`` / ``families.ipv6``)."""

    kind: VerdictKind = Field(alias="verdict")
    method: Method | None = None

    def model_post_init(self, __context: object) -> None:
        """Refuse a method that does not belong to the verdict (a programming error)."""
        if self.method is not None and METHODS.get(self.method) != self.kind:
            raise ValueError(f"method {self.method!r} does not go with verdict {self.kind!r}")


class Verdict(_AliasedWire):
    """What the classifier concluded for one endpoint, with its confidence and evidence.

    ``kind`` is the contract's ``verdict`` field: its JSON name stays ``verdict``.
    """

    kind: VerdictKind = Field(alias="verdict")
    method: Method | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()
    throughput: ThroughputSummary | None = None
    throughput_up: ThroughputSummary | None = None
    http3: Http3Verdict | None = None  # endpoints the platform file marks http3
    # Each family's own verdict when the endpoint was measured over IPv4 and IPv6 (None otherwise).
    families: dict[Family, FamilyVerdict] | None = Field(
        default=None, exclude_if=lambda v: v is None
    )

    def model_post_init(self, __context: object) -> None:
        """Refuse a method that does not belong to the verdict (a programming error)."""
        if self.method is not None and METHODS.get(self.method) != self.kind:
            raise ValueError(f"method {self.method!r} does not go with verdict {self.kind!r}")


def worst(verdicts: list[VerdictKind]) -> VerdictKind:
    """The most severe of ``verdicts`` (reachable when empty)."""
    for kind in SEVERITY:
        if kind in verdicts:
            return kind
    return "reachable"
