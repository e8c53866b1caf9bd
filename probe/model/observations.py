"""Observations: the raw facts one network step saw, as frozen wire models.

Times ``t0``/``t`` are float seconds relative to the measurement's zero time. Observations never
carry the probe's own address: only remote addresses (the resolver, the server) appear.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from probe.model.base import WireModel
from probe.model.failures import Failure

_CERTIFICATE_FAILURES = frozenset(
    {Failure.SSL_INVALID_HOSTNAME, Failure.SSL_UNKNOWN_AUTHORITY, Failure.SSL_INVALID_CERTIFICATE}
)  # verification failed: so a certificate came

DnsTransport = Literal["system", "udp", "tcp", "doh", "dot"]
Direction = Literal["down", "up"]


class DNSAnswer(WireModel):
    """One resource record of an answer."""

    rtype: Literal["A", "AAAA", "CNAME"]
    value: str
    ttl: int = Field(ge=0)


class DNSObservation(WireModel):
    """One DNS query and what came back.

    ``late_answers`` holds further responses to the same query that arrived after the first one
    (each a tuple of A/AAAA values): conflicting ones are the signature of on-path injection.
    """

    domain: str
    qtype: Literal["A", "AAAA"] = "A"
    resolver: str  # e.g. "system:198.18.10.53", "udp:198.18.103.53", "doh:https://.../dns-query"
    transport: DnsTransport
    control: bool = False  # True for the control resolver
    rcode: str | None = None  # "NOERROR", "NXDOMAIN", ... None when no response came
    answers: tuple[DNSAnswer, ...] = ()
    late_answers: tuple[tuple[str, ...], ...] = ()
    failure: Failure | None = None
    t0: float
    t: float

    @property
    def addresses(self) -> tuple[str, ...]:
        """The A/AAAA values of the first response."""
        return tuple(a.value for a in self.answers if a.rtype in ("A", "AAAA"))


class TCPConnectObservation(WireModel):
    """One TCP connect to a remote address."""

    ip: str
    port: int
    failure: Failure | None = None
    t0: float
    t: float


class Certificate(WireModel):
    """The facts of a peer certificate the classifier needs (the leaf, and its chain in PEM)."""

    subject: str
    issuer: str
    sans: tuple[str, ...] = ()
    not_after: str | None = None
    chain_pem: tuple[str, ...] = ()


class TLSHandshakeObservation(WireModel):
    """One TLS handshake to ``ip:port`` with ``sni``.

    ``control`` marks the benign-SNI handshake to the same address. ``cert_valid`` is whether the
    chain validates for ``sni`` under the configured trust store (None when no certificate came).
    ``alert`` names the TLS alert the server sent instead of completing the handshake
    (``unrecognized_name``, ``handshake_failure``; None when no alert came): a reply in TLS, unlike
    a reset, a close without any TLS record, or a reply that is not TLS at all.
    """

    ip: str
    port: int = 443
    sni: str
    control: bool = False
    failure: Failure | None = None
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    cert_valid: bool | None = None
    certificate: Certificate | None = None
    received: int | None = None  # bytes the server sent during the handshake (a stall keeps them)
    alert: str | None = None  # the TLS alert the server answered with, e.g. "unrecognized_name"
    # In a bundle each certificate is stored once, in ``Bundle.certificates``: this names it.
    certificate_ref: str | None = None
    t0: float
    t: float

    @property
    def server_answered(self) -> bool:
        """True when the server answered the ClientHello in TLS: a certificate (valid or not, for
        any name) or a TLS alert. What a benign-SNI control has to show, no more."""
        return (
            self.failure is None
            or self.certificate is not None
            or self.failure in _CERTIFICATE_FAILURES
            or self.alert is not None
        )


class HTTPObservation(WireModel):
    """One HTTP(S) fetch of ``url``, redirects followed within the platform's domains.

    A fetch that failed after the status line keeps the status, headers and the part of the body
    that arrived, with its ``failure``.
    """

    url: str
    method: str = "GET"
    ip: str | None = None  # the address the request went to, when known
    status: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    redirects: tuple[str, ...] = ()  # Location values followed, in order
    final_url: str | None = None
    title: str | None = None
    body_length: int | None = None
    body_sha256: str | None = None
    body_truncated: bool = False
    blockpage: str | None = None  # the blockpage fingerprint the body matched (body not kept)
    failure: Failure | None = None
    # For a body cut off by a failure: (seconds since the status line, cumulative body bytes),
    # the last sample when the last byte came, and the seconds from the status line to the end.
    body_samples: tuple[tuple[float, int], ...] = ()
    body_seconds: float | None = None
    t0: float
    t: float


class ThroughputObservation(WireModel):
    """A budgeted bulk transfer: bytes against time, sampled about every 100 ms.

    ``samples`` are ``(seconds since start, cumulative bytes)``. ``control`` marks the comparison
    transfer on the same path (a canary, or the same address with a benign SNI).
    """

    url: str
    direction: Direction = "down"
    ip: str | None = None
    sni: str | None = None
    control: bool = False
    bytes: int = 0
    seconds: float = 0.0
    ttfb: float | None = None
    samples: tuple[tuple[float, int], ...] = ()
    completed: bool = False  # the byte budget (or the whole object) arrived
    status: int | None = None  # the HTTP status of the response, when one came
    failure: Failure | None = None
    t0: float
    t: float

    @property
    def kbps(self) -> float:
        """Goodput in kilobits per second (0 when nothing moved)."""
        return self.bytes * 8 / 1000 / self.seconds if self.seconds > 0 else 0.0


class PacketObservation(WireModel):
    """Packet-level evidence (needs raw sockets): who sent a reset, every DNS response with its IP
    TTL, or the hop where a trigger gets blocked (TTL-limited probes, as CenTrace does).

    ``router`` is a router on the path that answered a TTL-limited probe, never the probe's own
    address.
    """

    kind: Literal["reset", "dns", "censor_location"]
    target: str  # the SNI, Host or domain the packets carried
    ip: str | None = None  # the server or resolver address
    injected: bool | None = None  # a middlebox forged packets (None: could not tell)
    ttls: tuple[int, ...] = ()  # IP TTLs of the packets judged (resets, or DNS responses)
    hop: int | None = None  # censor_location: the first hop that reacts to the trigger
    router: str | None = None  # censor_location: the router answering at or before that hop
    packets: int = 0
    description: str
    t0: float
    t: float


QuicClose = Literal["connection_close", "stateless_reset", "version_negotiation", "icmp"]


class QUICObservation(WireModel):
    """One QUIC handshake to ``ip:port`` with ``sni`` (ALPN h3), and an HTTP/3 GET when it worked.

    ``control`` marks the benign-SNI handshake to the same address. ``close`` says how the
    connection ended before the handshake completed, when something answered: a CONNECTION_CLOSE
    frame (``error_code``, ``frame_type``, ``reason`` as sent), a stateless reset, a Version
    Negotiation packet (``versions`` offered) or an ICMP error. ``sent``/``received`` count UDP
    payload bytes; ``handshake_seconds`` is the time to a completed handshake. ``skipped`` names
    why no packet was sent (the QUIC library is not installed).
    """

    ip: str
    port: int = 443
    sni: str
    control: bool = False
    failure: Failure | None = None
    skipped: str | None = None
    version: str | None = None  # "0x00000001" for QUIC v1
    alpn: str | None = None
    cert_valid: bool | None = None
    close: QuicClose | None = None
    error_code: int | None = None
    frame_type: int | None = None
    reason: str | None = None
    versions: tuple[str, ...] = ()  # offered in a Version Negotiation packet
    handshake_seconds: float | None = None
    status: int | None = None  # the HTTP/3 status of the GET, when one was made and answered
    body_length: int | None = None
    sent: int = 0
    received: int = 0
    t0: float
    t: float

    @property
    def server_answered(self) -> bool:
        """True when the handshake completed, or the peer answered in QUIC at all (a close
        carrying a TLS alert, a version list). What a benign-SNI control has to show."""
        return self.failure is None or (self.close is not None and self.close != "icmp")
