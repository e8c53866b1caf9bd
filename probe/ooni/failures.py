"""OONI failure strings as ours: the probe's and the test helper's, across versions.

OONI's probe uses our names for most failures (``connection_reset``, ``generic_timeout_error``);
older probes (MK, 0.0.1-0.3) and the test helper use others (``connection_refused_error``,
``dns_name_error``), and some carry a detail after a colon (``unknown_failure: stopped after
too many redirects``, ``ssl_error: ... certificate verify failed``).
"""

from __future__ import annotations

from probe.model.failures import Failure

_OTHER_NAMES: dict[str, Failure] = {
    "dns_name_error": Failure.DNS_NXDOMAIN,  # the test helper's NXDOMAIN
    "dns_server_misbehaving": Failure.DNS_SERVFAIL,
    "dns_temporary_failure": Failure.DNS_SERVFAIL,
    "connection_refused_error": Failure.CONNECTION_REFUSED,
    "connection_reset_error": Failure.CONNECTION_RESET,
    "connection_aborted": Failure.CONNECTION_RESET,
    "connection_already_closed": Failure.EOF,
    "ssl_error": Failure.SSL_FAILED_HANDSHAKE,
    # Android's getaddrinfo says EAI_NODATA for every failure, a missing name as well as a
    # dropped query: it does not say why the lookup failed.
    "android_dns_cache_no_data": Failure.UNKNOWN,
}
_CERTIFICATE = "certificate verify failed"


def failure_of(value: object) -> Failure | None:
    """Our ``Failure`` for an OONI failure string (None for no failure, UNKNOWN when unknown)."""
    if value is None or value == "":
        return None
    text = str(value)
    name, _, detail = text.partition(":")
    name = name.strip()
    if name == "ssl_error" and _CERTIFICATE in detail:
        return Failure.SSL_UNKNOWN_AUTHORITY
    try:
        return Failure(name)
    except ValueError:
        return _OTHER_NAMES.get(name, Failure.UNKNOWN)
