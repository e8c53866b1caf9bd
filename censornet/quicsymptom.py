"""The ``quic`` symptom: one QUIC handshake (ALPN h3) with an SNI to an address, on aioquic's own
asyncio client, independent of the probe's QUIC step. ``python -m censornet.symptoms quic IP SNI``.

Outcomes: ``ok`` (the handshake completed; ``valid`` says whether the certificate validates for the
SNI against ``--ca``, checked on a second handshake only when the first did not verify), ``timeout``
(nothing completed it in time), ``closed`` (the connection was closed before it completed: a
CONNECTION_CLOSE, or a certificate the client refused).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from aioquic.asyncio.client import connect
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration


@dataclass
class QuicSymptom:
    """What one QUIC handshake showed."""

    kind: str
    ip: str
    sni: str
    outcome: str  # ok | timeout | closed | error
    alpn: str | None = None
    valid: bool | None = None
    ms: float = 0.0


async def _shake(ip: str, sni: str, port: int, limit: float, ca: Path | None) -> str | None:
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=sni,
        verify_mode=ssl.CERT_REQUIRED if ca else ssl.CERT_NONE,
        cafile=str(ca) if ca else None,
    )
    async with asyncio.timeout(limit):
        async with connect(ip, port, configuration=configuration) as client:
            alpn = client._quic.tls.alpn_negotiated if client._quic.tls else None
            client.close()
            return alpn


def quic_handshake(
    ip: str, sni: str, *, port: int = 443, timeout: float = 3.0, ca_file: Path | None = None
) -> QuicSymptom:
    """One handshake; with ``ca_file`` the verdict on the certificate too."""
    started = time.monotonic()
    result = QuicSymptom("quic", ip, sni, "error")
    try:
        result.alpn = asyncio.run(_shake(ip, sni, port, timeout, ca_file))
        result.outcome, result.valid = "ok", True if ca_file else None
    except TimeoutError:
        result.outcome = "timeout"
    except ConnectionError:
        result.outcome = "closed"
        if ca_file is not None:  # refused by us? an unverified handshake tells
            try:
                result.alpn = asyncio.run(_shake(ip, sni, port, timeout, None))
                result.outcome, result.valid = "ok", False
            except (TimeoutError, ConnectionError):
                pass
    result.ms = round((time.monotonic() - started) * 1000, 1)
    return result
