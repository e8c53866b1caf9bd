"""Methods: how a verdict was reached, as ``stage.outcome`` (``tls.reset``, ``throttle.rate``).

One closed vocabulary, like ``probe.model.failures.Failure``. The names are an external contract
(docs/verdicts.md): extend, never rename. ``probe.model.verdict.METHODS`` says which verdict each
method belongs to.
"""

from __future__ import annotations

from enum import StrEnum


class Method(StrEnum):
    """How the classifier reached a blocked, throttled or outage verdict."""

    DNS_NXDOMAIN = "dns.nxdomain"
    DNS_SERVFAIL = "dns.servfail"
    DNS_REFUSED = "dns.refused"
    DNS_BOGON = "dns.bogon"
    DNS_SPOOFED = "dns.spoofed"
    DNS_INJECTED = "dns.injected"
    DNS_TIMEOUT = "dns.timeout"
    TCP_TIMEOUT = "tcp.timeout"
    TCP_RESET = "tcp.reset"
    TCP_UNREACHABLE = "tcp.unreachable"
    TLS_RESET = "tls.reset"
    TLS_TIMEOUT = "tls.timeout"
    TLS_EOF = "tls.eof"
    TLS_ALERT = "tls.alert"
    TLS_MITM = "tls.mitm"
    HTTP_RESET = "http.reset"
    HTTP_TIMEOUT = "http.timeout"
    HTTP_EOF = "http.eof"
    HTTP_BLOCKPAGE = "http.blockpage"
    HTTP_REDIRECT = "http.redirect"
    QUIC_TIMEOUT = "quic.timeout"
    QUIC_CLOSED = "quic.closed"
    THROTTLE_RATE = "throttle.rate"
    THROTTLE_STALL = "throttle.stall"
    OUTAGE_LOCAL = "outage.local"
    OUTAGE_PLATFORM = "outage.platform"
    OUTAGE_DNS = "outage.dns"
