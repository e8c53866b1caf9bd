"""The one table from exceptions to ``Failure`` values (most specific first).

Steps catch ``NETWORK_ERRORS`` at their boundary and call ``classify_exception``; anything else is
a programming error and propagates. Wrapped exceptions (httpx wraps httpcore, which wraps the
``OSError`` or ``ssl.SSLError`` the socket raised) are classified by the innermost cause that has
a specific mapping, so a reset during a TLS handshake inside httpx is still ``connection_reset``.

Hierarchy:

- ``ssl.SSLCertVerificationError``: ``ssl_invalid_hostname`` (name mismatch),
  ``ssl_unknown_authority`` (no path to a trusted root, self-signed), else
  ``ssl_invalid_certificate`` (expired, not yet valid, bad usage ...)
- ``ssl.SSLEOFError``/``SSLZeroReturnError``, ``EOFError``, httpx "disconnected": ``eof_error``
- other ``ssl.SSLError`` (an alert from the peer, a non-TLS reply): ``ssl_failed_handshake``
- ``ConnectionResetError``/``BrokenPipeError``/``ConnectionAbortedError``: ``connection_reset``
- ``ConnectionRefusedError``: ``connection_refused``
- ``TimeoutError``, httpx/dnspython timeouts: ``generic_timeout_error``
- ``OSError`` by errno: EHOSTUNREACH ``host_unreachable``, ENETUNREACH ``network_unreachable``
- anything else in ``NETWORK_ERRORS``: ``unknown_failure``

``tls_alert`` tells, within ``ssl_failed_handshake``, an alert the peer sent (OpenSSL names the
received alert in the error's reason) from an error of our own side (a reply that is not TLS).
"""

from __future__ import annotations

import errno
import ssl

import dns.exception
import httpx

from probe.model.failures import Failure

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ssl.SSLError, ConnectionError and TimeoutError
    EOFError,  # includes asyncio.IncompleteReadError
    httpx.HTTPError,
    dns.exception.DNSException,
)

# OpenSSL X509_V_ERR_* codes.
_HOSTNAME_MISMATCH = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})  # no issuer, self-signed, no local issuer

_ERRNO: dict[int, Failure] = {
    errno.ECONNRESET: Failure.CONNECTION_RESET,
    errno.EPIPE: Failure.CONNECTION_RESET,
    errno.ECONNABORTED: Failure.CONNECTION_RESET,
    errno.ECONNREFUSED: Failure.CONNECTION_REFUSED,
    errno.ETIMEDOUT: Failure.TIMEOUT,
    errno.EHOSTUNREACH: Failure.HOST_UNREACHABLE,
    errno.ENETUNREACH: Failure.NETWORK_UNREACHABLE,
}


# OpenSSL's reasons for a received alert: SSLV3_ALERT_*, TLSV1_ALERT_*, TLSV13_ALERT_*, and five
# TLS 1.0 extension alerts named without ALERT.
_ALERT_PREFIXES = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")
_TLSV1_ALERTS = frozenset(
    {
        "TLSV1_UNRECOGNIZED_NAME",
        "TLSV1_UNSUPPORTED_EXTENSION",
        "TLSV1_CERTIFICATE_UNOBTAINABLE",
        "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE",
        "TLSV1_BAD_CERTIFICATE_HASH_VALUE",
    }
)


def tls_alert(exc: BaseException) -> str | None:
    """The TLS alert the peer sent, when ``exc`` (or what it wraps) reports one, in the RFC's
    lower-case name ("unrecognized_name", "handshake_failure"); None otherwise."""
    for cause in _chain(exc):
        if not isinstance(cause, ssl.SSLError) or not isinstance(cause.reason, str):
            continue
        reason = cause.reason
        for prefix in _ALERT_PREFIXES:
            if reason.startswith(prefix):
                return reason.removeprefix(prefix).lower()
        if reason in _TLSV1_ALERTS:
            return reason.removeprefix("TLSV1_").lower()
    return None


def classify_exception(exc: BaseException) -> Failure:
    """The ``Failure`` that ``exc`` (or the innermost cause with a specific mapping) stands for."""
    for cause in reversed(_chain(exc)):
        failure = _classify_one(cause)
        if failure is not None:
            return failure
    return Failure.UNKNOWN


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps, outermost first.

    Followed links: an explicit ``__cause__``; an exception passed as the first argument (httpcore
    wraps that way); the first member of an exception group; an unsuppressed ``__context__``.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = _wrapped(current)
    return chain


def _wrapped(exc: BaseException) -> BaseException | None:
    """The exception ``exc`` wraps, if any."""
    if exc.__cause__ is not None:
        return exc.__cause__
    if exc.args and isinstance(exc.args[0], BaseException):
        return exc.args[0]
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return exc.exceptions[0]
    if not exc.__suppress_context__:
        return exc.__context__
    return None


def _classify_one(exc: BaseException) -> Failure | None:
    """The specific mapping of one exception, or None when it says nothing specific."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _HOSTNAME_MISMATCH:
            return Failure.SSL_INVALID_HOSTNAME
        if exc.verify_code in _UNKNOWN_AUTHORITY:
            return Failure.SSL_UNKNOWN_AUTHORITY
        return Failure.SSL_INVALID_CERTIFICATE
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError):
        return Failure.EOF
    if isinstance(exc, ssl.SSLError):
        if "EOF" in str(exc):
            return Failure.EOF
        return Failure.SSL_FAILED_HANDSHAKE
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return Failure.CONNECTION_RESET
    if isinstance(exc, ConnectionRefusedError):
        return Failure.CONNECTION_REFUSED
    if isinstance(exc, TimeoutError | httpx.TimeoutException | dns.exception.Timeout):
        return Failure.TIMEOUT
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc).lower():
        return Failure.EOF
    return None
