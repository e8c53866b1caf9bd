"""The wire formats: observations, measurements, verdicts and run documents (no I/O)."""

from probe.model.failures import Failure
from probe.model.measurement import Measurement, Observations, VantageInfo
from probe.model.methods import Method
from probe.model.observations import (
    Certificate,
    DNSAnswer,
    DNSObservation,
    HTTPObservation,
    PacketObservation,
    QUICObservation,
    TCPConnectObservation,
    ThroughputObservation,
    TLSHandshakeObservation,
)
from probe.model.result import EndpointResult, ProbeInfo, RunDocument
from probe.model.verdict import (
    METHODS,
    Family,
    FamilyVerdict,
    Http3Verdict,
    ThroughputSummary,
    Verdict,
    VerdictKind,
    worst,
)

__all__ = [
    "METHODS",
    "Certificate",
    "DNSAnswer",
    "DNSObservation",
    "EndpointResult",
    "Failure",
    "Family",
    "FamilyVerdict",
    "HTTPObservation",
    "Http3Verdict",
    "Measurement",
    "Method",
    "Observations",
    "PacketObservation",
    "ProbeInfo",
    "QUICObservation",
    "RunDocument",
    "TCPConnectObservation",
    "TLSHandshakeObservation",
    "ThroughputObservation",
    "ThroughputSummary",
    "VantageInfo",
    "Verdict",
    "VerdictKind",
    "worst",
]
