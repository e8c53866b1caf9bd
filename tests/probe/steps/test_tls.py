"""tls.handshake: valid chain, wrong name, unknown CA, reset, EOF, alert and silence, and what real
TLS servers (OpenSSL through Python's ssl, nginx) answer for a name they do not host."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from probe.model.failures import Failure
from probe.model.observations import TLSHandshakeObservation
from probe.net.clock import Clock, deadline_in
from probe.steps import tls
from tests.probe.steps.real_tls import Nginx, OpenSSLServer
from tests.probe.steps.servers import HTTPServer, RawServer, reset, server_context

pytestmark = pytest.mark.anyio

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _tls_server(ca: trustme.CA, *names: str) -> HTTPServer:
    return await HTTPServer({}).start(tls=server_context(ca, *names))


async def _handshake(
    port: int, sni: str, ca_file: Path | None, wait: float = 2.0
) -> TLSHandshakeObservation:
    return await tls.handshake(
        "127.0.0.1", sni, port=port, deadline=deadline_in(wait), clock=Clock(), ca_file=ca_file
    )


async def _raw(
    handler: RawHandler, sni: str = "x.test", wait: float = 2.0
) -> TLSHandshakeObservation:
    server = await RawServer(handler).start()
    try:
        return await _handshake(server.port, sni, None, wait)
    finally:
        server.close()


async def test_valid_chain(ca: trustme.CA, ca_file: Path) -> None:
    """A certificate for the SNI from the trusted CA: valid, with version, cipher, ALPN, SANs."""
    server = await _tls_server(ca, "x.test", "www.x.test")
    try:
        obs = await _handshake(server.port, "x.test", ca_file)
    finally:
        server.close()
    assert obs.failure is None
    assert obs.cert_valid is True
    assert obs.tls_version in ("TLSv1.3", "TLSv1.2")
    assert obs.cipher
    assert obs.certificate is not None
    assert ("x.test", "www.x.test") == obs.certificate.sans
    assert "blockprobe test CA" in obs.certificate.issuer
    assert obs.certificate.chain_pem[0].startswith("-----BEGIN CERTIFICATE-----")
    assert ["x.test"] == server.snis


async def test_wrong_name_keeps_the_certificate(ca: trustme.CA, ca_file: Path) -> None:
    """A trusted certificate for another name: ssl_invalid_hostname, certificate still recorded."""
    server = await _tls_server(ca, "blockpage.test")
    try:
        obs = await _handshake(server.port, "x.test", ca_file)
    finally:
        server.close()
    assert Failure.SSL_INVALID_HOSTNAME == obs.failure
    assert obs.cert_valid is False
    assert obs.certificate is not None
    assert ("blockpage.test",) == obs.certificate.sans


async def test_unknown_ca_names_the_issuer(ca_file: Path) -> None:
    """A certificate from an unknown CA (interception): ssl_unknown_authority, issuer named."""
    mitm = trustme.CA(organization_name="interception CA")
    server = await _tls_server(mitm, "x.test")
    try:
        obs = await _handshake(server.port, "x.test", ca_file)
    finally:
        server.close()
    assert Failure.SSL_UNKNOWN_AUTHORITY == obs.failure
    assert obs.cert_valid is False
    assert obs.certificate is not None
    assert "interception CA" in obs.certificate.issuer


async def test_reset_after_client_hello() -> None:
    """RST after the ClientHello is connection_reset, with no certificate."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        reset(writer)

    obs = await _raw(handler)
    assert Failure.CONNECTION_RESET == obs.failure
    assert obs.certificate is None
    assert obs.cert_valid is None
    assert (None, False) == (obs.alert, obs.server_answered)


async def test_eof_after_client_hello() -> None:
    """A FIN after the ClientHello is eof_error (not a reset)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    obs = await _raw(handler)
    assert Failure.EOF == obs.failure
    assert (None, False) == (obs.alert, obs.server_answered)


async def test_alert_after_client_hello() -> None:
    """A fatal handshake_failure alert is ssl_failed_handshake."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    obs = await _raw(handler)
    assert Failure.SSL_FAILED_HANDSHAKE == obs.failure
    assert ("handshake_failure", True) == (obs.alert, obs.server_answered)


async def test_silence_is_a_timeout() -> None:
    """No ServerHello before the deadline is generic_timeout_error."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)
        writer.close()

    obs = await _raw(handler, wait=0.5)
    assert Failure.TIMEOUT == obs.failure
    assert 0.4 < obs.t - obs.t0 < 1.0
    assert (None, False) == (obs.alert, obs.server_answered)


async def test_a_reply_that_is_not_tls_is_no_tls_answer() -> None:
    """An HTTP reply to the ClientHello (a blockpage box) fails the handshake with no alert."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    obs = await _raw(handler)
    assert Failure.SSL_FAILED_HANDSHAKE == obs.failure
    assert (None, False) == (obs.alert, obs.server_answered)


# --- real servers asked for a name they do not host (the benign-SNI control) ----------------


@pytest.mark.parametrize(
    ("alert", "name"),
    [
        (ssl.AlertDescription.ALERT_DESCRIPTION_UNRECOGNIZED_NAME, "unrecognized_name"),
        (ssl.AlertDescription.ALERT_DESCRIPTION_HANDSHAKE_FAILURE, "handshake_failure"),
    ],
)
async def test_openssl_server_alert_for_an_unknown_name(
    ca: trustme.CA, ca_file: Path, alert: ssl.AlertDescription, name: str
) -> None:
    """OpenSSL refusing the SNI with an alert: ssl_failed_handshake, the alert named, answered."""
    with OpenSSLServer(ca, "x.test", alert) as server:
        benign = await _handshake(server.port, "example.test", ca_file)
        hosted = await _handshake(server.port, "x.test", ca_file)
    assert Failure.SSL_FAILED_HANDSHAKE == benign.failure
    assert (name, True, None) == (benign.alert, benign.server_answered, benign.certificate)
    assert (None, True) == (hosted.failure, hosted.cert_valid)


async def test_openssl_server_own_certificate_for_any_name(ca: trustme.CA, ca_file: Path) -> None:
    """A server presenting its own certificate to every SNI: another name, still a TLS answer."""
    with OpenSSLServer(ca, "x.test", None) as server:
        benign = await _handshake(server.port, "example.test", ca_file)
    assert Failure.SSL_INVALID_HOSTNAME == benign.failure
    assert benign.certificate is not None
    assert ("x.test",) == benign.certificate.sans
    assert (None, True) == (benign.alert, benign.server_answered)


async def test_nginx_rejects_an_unknown_name_with_an_alert(
    ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    """nginx's ``ssl_reject_handshake`` default server: unrecognized_name, a TLS answer."""
    with Nginx(ca, "x.test", tmp_path) as nginx:
        benign = await _handshake(nginx.reject_port, "example.test", ca_file)
        hosted = await _handshake(nginx.reject_port, "x.test", ca_file)
    assert (Failure.SSL_FAILED_HANDSHAKE, "unrecognized_name") == (benign.failure, benign.alert)
    assert benign.server_answered
    assert (None, True) == (hosted.failure, hosted.cert_valid)


async def test_nginx_default_server_certificate_for_an_unknown_name(
    ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    """nginx's default server presents its certificate, for another name, to every SNI."""
    with Nginx(ca, "x.test", tmp_path) as nginx:
        benign = await _handshake(nginx.default_port, "example.test", ca_file)
    assert Failure.SSL_INVALID_HOSTNAME == benign.failure
    assert benign.certificate is not None
    assert ("x.test",) == benign.certificate.sans
    assert (None, True) == (benign.alert, benign.server_answered)


async def test_control_flag_is_kept(ca: trustme.CA, ca_file: Path) -> None:
    """The benign-SNI control handshake is marked as control."""
    server = await _tls_server(ca, "example.test")
    try:
        obs = await tls.handshake(
            "127.0.0.1",
            "example.test",
            port=server.port,
            deadline=deadline_in(2),
            clock=Clock(),
            ca_file=ca_file,
            control=True,
        )
    finally:
        server.close()
    assert obs.control
    assert obs.cert_valid is True
