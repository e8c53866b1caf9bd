"""Failure strings: stable snake_case names, OONI's where OONI has one.

A step records ``failure: Failure | None`` (None on success). The mapping from Python exceptions to
these values lives in one table, ``probe.net.errors``. Rough hierarchy:

- DNS: ``dns_nxdomain_error``, ``dns_servfail_error``, ``dns_refused_error``, ``dns_no_answer``
- connect: ``connection_refused``, ``connection_reset``, ``host_unreachable``,
  ``network_unreachable``
- TLS: ``ssl_invalid_hostname``, ``ssl_unknown_authority``, ``ssl_invalid_certificate``,
  ``ssl_failed_handshake`` (an alert from the peer)
- QUIC: ``quic_connection_closed`` (a CONNECTION_CLOSE frame), ``quic_stateless_reset``,
  ``quic_incompatible_version`` (a Version Negotiation packet); an ICMP port unreachable is
  ``connection_refused``, as over TCP
- any stage: ``generic_timeout_error``, ``eof_error``, ``unknown_failure``
"""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    """Why a network step failed."""

    DNS_NXDOMAIN = "dns_nxdomain_error"
    DNS_SERVFAIL = "dns_servfail_error"
    DNS_REFUSED = "dns_refused_error"
    DNS_NO_ANSWER = "dns_no_answer"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    TIMEOUT = "generic_timeout_error"
    EOF = "eof_error"
    SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
    SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
    SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
    SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
    QUIC_CLOSED = "quic_connection_closed"
    QUIC_STATELESS_RESET = "quic_stateless_reset"
    QUIC_INCOMPATIBLE_VERSION = "quic_incompatible_version"
    UNKNOWN = "unknown_failure"
