"""Verdicts: the classifier's answer for one endpoint, in the vocabulary of docs/verdicts.md.

``Verdict.method`` is ``stage.outcome`` (``tls.reset``, ``throttle.rate``, ``outage.local``) or None
for reachable and inconclusive. The names are an external contract: extend, never rename.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from probe.model.observations import Direction

VerdictKind = Literal["reachable", "blocked", "throttled", "outage", "inconclusive"]

# Worst first: a platform summary takes the worst endpoint verdict.
SEVERITY: tuple[VerdictKind, ...] = ("blocked", "throttled", "outage", "inconclusive", "reachable")

METHODS: dict[str, VerdictKind] = {
    "dns.nxdomain": "blocked",
    "dns.servfail": "blocked",
    "dns.refused": "blocked",
    "dns.bogon": "blocked",
    "dns.spoofed": "blocked",
    "dns.injected": "blocked",
    "dns.timeout": "blocked",
    "tcp.timeout": "blocked",
    "tcp.reset": "blocked",
    "tcp.unreachable": "blocked",
    "tls.reset": "blocked",
    "tls.timeout": "blocked",
    "tls.eof": "blocked",
    "tls.alert": "blocked",
    "tls.mitm": "blocked",
    "http.reset": "blocked",
    "http.timeout": "blocked",
    "http.eof": "blocked",
    "http.blockpage": "blocked",
    "http.redirect": "blocked",
    "quic.timeout": "blocked",
    "throttle.rate": "throttled",
    "throttle.stall": "throttled",
    "outage.local": "outage",
    "outage.platform": "outage",
    "outage.dns": "outage",
}


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ThroughputSummary(_Wire):
    """The contract's ``throughput`` object for an endpoint that transferred data."""

    bytes: int
    seconds: float
    kbps: float
    control_kbps: float | None = None
    ratio: float | None = None
    samples: tuple[tuple[float, int], ...] = ()
    direction: Direction = "down"


class Verdict(_Wire):
    """What the classifier concluded for one endpoint, with its confidence and evidence."""

    verdict: VerdictKind
    method: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()
    throughput: ThroughputSummary | None = None
    throughput_up: ThroughputSummary | None = None

    def model_post_init(self, __context: object) -> None:
        """Refuse a method that does not belong to the verdict (a programming error)."""
        if self.method is not None and METHODS.get(self.method) != self.verdict:
            raise ValueError(f"method {self.method!r} does not go with verdict {self.verdict!r}")


def worst(verdicts: list[VerdictKind]) -> VerdictKind:
    """The most severe of ``verdicts`` (reachable when empty)."""
    for kind in SEVERITY:
        if kind in verdicts:
            return kind
    return "reachable"
