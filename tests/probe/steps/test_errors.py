"""The exception-to-failure table, and the TLS alert a peer sent."""

from __future__ import annotations

import errno
import ssl

import dns.exception
import httpx
import pytest

from probe.model.failures import Failure
from probe.net.errors import classify_exception, tls_alert


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    return exc


def _wrapped(inner: BaseException) -> httpx.ConnectError:
    """An httpx error caused by ``inner``, as httpx raises it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise httpx.ConnectError("wrapped") from exc
    except httpx.ConnectError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionResetError(), Failure.CONNECTION_RESET),
        (BrokenPipeError(), Failure.CONNECTION_RESET),
        (ConnectionRefusedError(), Failure.CONNECTION_REFUSED),
        (TimeoutError(), Failure.TIMEOUT),
        (OSError(errno.EHOSTUNREACH, "no route"), Failure.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "unreachable"), Failure.NETWORK_UNREACHABLE),
        (OSError(errno.ECONNRESET, "reset"), Failure.CONNECTION_RESET),
        (EOFError(), Failure.EOF),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), Failure.EOF),
        (_verify_error(62), Failure.SSL_INVALID_HOSTNAME),
        (_verify_error(20), Failure.SSL_UNKNOWN_AUTHORITY),
        (_verify_error(19), Failure.SSL_UNKNOWN_AUTHORITY),
        (_verify_error(10), Failure.SSL_INVALID_CERTIFICATE),
        (
            ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] alert"),
            Failure.SSL_FAILED_HANDSHAKE,
        ),
        (httpx.ReadTimeout("slow"), Failure.TIMEOUT),
        (httpx.RemoteProtocolError("Server disconnected without response"), Failure.EOF),
        (dns.exception.Timeout(), Failure.TIMEOUT),  # type: ignore[no-untyped-call]
        (_wrapped(ConnectionResetError()), Failure.CONNECTION_RESET),
        (_wrapped(_verify_error(62)), Failure.SSL_INVALID_HOSTNAME),
        (httpx.ConnectError("no cause"), Failure.UNKNOWN),
        (OSError(errno.EACCES, "denied"), Failure.UNKNOWN),
    ],
    ids=repr,
)
def test_classify_exception(exc: BaseException, expected: Failure) -> None:
    """Each exception maps to its failure, wrapped ones by their innermost specific cause."""
    assert expected == classify_exception(exc)


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, reason.lower())
    exc.reason = reason
    return exc


@pytest.mark.parametrize(
    ("reason", "alert"),
    [
        ("TLSV1_UNRECOGNIZED_NAME", "unrecognized_name"),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "handshake_failure"),
        ("TLSV1_ALERT_INTERNAL_ERROR", "internal_error"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate_required"),
        ("WRONG_VERSION_NUMBER", None),  # a reply that is not TLS: our side's error, no alert
        ("UNEXPECTED_EOF_WHILE_READING", None),
    ],
)
def test_tls_alert_names_the_alert_the_peer_sent(reason: str, alert: str | None) -> None:
    assert alert == tls_alert(_ssl_error(reason))
    wrapped = httpx.ConnectError("wrapped")
    wrapped.__cause__ = _ssl_error(reason)
    assert alert == tls_alert(wrapped)
    assert tls_alert(ConnectionResetError()) is None
