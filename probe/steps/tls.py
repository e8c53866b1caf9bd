"""TLS handshake to ``ip:port`` with a chosen SNI: version, cipher, ALPN and the peer certificate.

The ClientHello is the one the HTTP fetch sends (``probe.net.tlsclient``: same context, same
ALPN offer). Trust is the system store or a CA file. To name the issuer of a certificate that
does not validate (``tls.mitm`` evidence), a handshake that fails certificate verification is
followed by a second handshake on a fresh connection with verification off, which only collects
the certificate; the observation keeps the verification failure and ``cert_valid=False``. A valid
chain costs one handshake. OpenSSL builds and checks the chain, so intermediates the server
sends are used.

Failures keep apart what a censor does from what a server does: a reset (``connection_reset``), a
close without any TLS record (``eof_error``), silence (``generic_timeout_error``), and a TLS alert
from the server (``ssl_failed_handshake`` with ``alert`` naming it, as a server does for a name it
does not host). A benign-SNI control that drew a certificate for another name or an alert still
shows that the server answers TLS (``TLSHandshakeObservation.server_answered``).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from probe.model.failures import Failure
from probe.model.observations import Certificate, TLSHandshakeObservation
from probe.net.clock import Clock
from probe.net.errors import NETWORK_ERRORS, classify_exception, tls_alert
from probe.net.tlsclient import client_context


async def handshake(
    ip: str,
    sni: str,
    *,
    port: int = 443,
    deadline: float,
    clock: Clock,
    ca_file: Path | None = None,
    control: bool = False,
) -> TLSHandshakeObservation:
    """Handshake with ``ip:port`` sending ``sni`` before ``deadline``, trusting ``ca_file``."""
    t0 = clock.now()
    failure: Failure | None = None
    session: _Session | None = None
    cert_valid: bool | None = None
    alert: str | None = None
    received = [0]
    try:
        async with asyncio.timeout_at(deadline):
            try:
                session = await _handshake(ip, port, sni, client_context(ca_file), received)
                cert_valid = True
            except ssl.SSLCertVerificationError as exc:
                failure = classify_exception(exc)
                cert_valid = False
                session = await _handshake(ip, port, sni, client_context(None, verify=False), [0])
    except NETWORK_ERRORS as exc:
        if failure is None:  # a failure of the verifying handshake wins over the second one's
            failure = classify_exception(exc)
            alert = tls_alert(exc)
    return TLSHandshakeObservation(
        ip=ip,
        port=port,
        sni=sni,
        control=control,
        failure=failure,
        tls_version=session.version if session else None,
        cipher=session.cipher if session else None,
        alpn=session.alpn if session else None,
        cert_valid=cert_valid,
        certificate=session.certificate if session else None,
        received=received[0],
        alert=alert,
        t0=t0,
        t=clock.now(),
    )


class _Session:
    """What one completed handshake showed."""

    def __init__(self, ssl_object: ssl.SSLObject) -> None:
        self.version = ssl_object.version()
        cipher = ssl_object.cipher()
        self.cipher = cipher[0] if cipher else None
        self.alpn = ssl_object.selected_alpn_protocol()
        self.certificate = _describe(ssl_object)


async def _handshake(
    ip: str,
    port: int,
    sni: str,
    context: ssl.SSLContext,
    received: list[int],
) -> _Session:
    """One TCP connection and TLS handshake, driven through memory BIOs; closes the connection.

    ``received[0]`` counts the bytes the server sent, as they arrive (a timeout keeps the count).

    Driving the handshake ourselves (rather than asyncio's SSL transport, which reports a peer's
    FIN during the handshake as a connection reset) keeps EOF, reset and alert apart.
    """
    reader, writer = await asyncio.open_connection(ip, port)
    try:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            if pending := outgoing.read():
                writer.write(pending)
                await writer.drain()
            if done:
                return _Session(tls)
            data = await reader.read(65536)
            if not data:
                raise EOFError("connection closed during the TLS handshake")
            received[0] += len(data)
            incoming.write(data)
    finally:
        writer.close()


def _describe(ssl_object: ssl.SSLObject) -> Certificate | None:
    """The leaf's facts and the chain in PEM (the whole chain on Python 3.13+, else the leaf)."""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    leaf = x509.load_der_x509_certificate(der)
    chain_der: list[bytes] = [der]
    get_chain = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+: DER bytes
    if get_chain is not None:
        chain_der = [bytes(item) for item in get_chain()]
    chain_pem = tuple(
        x509.load_der_x509_certificate(item).public_bytes(Encoding.PEM).decode("ascii")
        for item in chain_der
    )
    return Certificate(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        sans=_sans(leaf),
        not_after=leaf.not_valid_after_utc.isoformat(),
        chain_pem=chain_pem,
    )


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS names and IP addresses of the subjectAltName extension."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = list(ext.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return tuple(names)
