"""The run document printed by ``blockprobe run --json`` (shared/spec/verdicts.md).

One ``EndpointResult`` per endpoint and one per platform with ``target`` None (the summary).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from probe.model.base import FrozenModel
from probe.model.verdict import Family, FamilyVerdict, Http3Verdict, ThroughputSummary, VerdictKind


class EndpointResult(FrozenModel):
    """One row of ``results``: an endpoint's verdict, or a platform summary (``target`` None)."""

    platform: str
    target: str | None
    domain: str | None
    verdict: VerdictKind
    method: str | None
    confidence: float
    evidence: tuple[str, ...]
    throughput: ThroughputSummary | None
    measurement_id: str | None
    partial: bool = False
    http3: Http3Verdict | None = None  # the endpoint's HTTP/3 result, when it was measured
    # When measured over IPv4 and IPv6; absent otherwise.
    families: dict[Family, FamilyVerdict] | None = Field(
        default=None, exclude_if=lambda v: v is None
    )


class ProbeInfo(FrozenModel):
    """What the run document says about the probe: software and network, never its address."""

    software: str
    version: str
    country: str | None = None
    asn: int | None = None
    network: str | None = None


class RunDocument(FrozenModel):
    """The single JSON document of ``blockprobe run --json``."""

    probe: ProbeInfo
    started_at: datetime
    results: tuple[EndpointResult, ...]
    # Facts about the whole run ("no IPv6 here"); absent when there is none.
    notes: tuple[str, ...] = Field(default=(), exclude_if=lambda v: not v)
