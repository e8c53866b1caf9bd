"""Measurement: one endpoint measured once from one vantage point, with its controls and verdict.

The vantage point is described by country and network (ASN) only: never by the probe's address.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from probe.model.base import WireModel
from probe.model.observations import (
    DNSObservation,
    HTTPObservation,
    PacketObservation,
    QUICObservation,
    TCPConnectObservation,
    ThroughputObservation,
    TLSHandshakeObservation,
)
from probe.model.verdict import Verdict


class Observations(WireModel):
    """Everything the steps saw for one endpoint (or canary) from one place, retries included."""

    dns: tuple[DNSObservation, ...] = ()
    tcp: tuple[TCPConnectObservation, ...] = ()
    tls: tuple[TLSHandshakeObservation, ...] = ()
    http: tuple[HTTPObservation, ...] = ()
    throughput: tuple[ThroughputObservation, ...] = ()
    packets: tuple[PacketObservation, ...] = ()  # packet-level evidence, when raw sockets allow
    quic: tuple[QUICObservation, ...] = ()  # HTTP/3 endpoints: QUIC handshakes and their controls


class VantageInfo(WireModel):
    """Where a measurement was taken, coarsely: never the probe's IP address."""

    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    asn: int | None = Field(default=None, ge=0, le=4_294_967_295)
    network: str | None = None  # a label such as "lab-isp1"
    software: str


class Measurement(WireModel):
    """One endpoint of one platform, measured once, with the controls used and the verdict."""

    measurement_id: str
    platform: str
    target: str  # the endpoint URL
    domain: str
    started_at: datetime
    runtime: float = Field(ge=0.0)
    vantage: VantageInfo
    local: Observations
    control: Observations | None = None  # from the control vantage (helper), when asked
    canaries: dict[str, Observations] = Field(default_factory=dict)  # by canary domain
    # In a bundle a run's canaries are stored once, in ``Bundle.canaries``: this names them.
    canaries_ref: str | None = None
    verdict: Verdict
