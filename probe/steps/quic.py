"""QUIC handshake (ALPN h3) to ``ip:port`` with a chosen SNI, and a small HTTP/3 GET when it works.

The QUIC library (aioquic, the ``quic`` extra) is imported here only when a QUIC step runs, never
at import time: the daemon's idle path does not load it. Without it the step sends nothing and
its observation says so (``skipped``), which the classifier reads as "not measured".

What comes back is kept apart the way a censor's doing differs from a server's: silence
(``generic_timeout_error``), a CONNECTION_CLOSE frame (``quic_connection_closed``), a stateless
reset, a Version Negotiation packet without a version we speak (``quic_incompatible_version``), an
ICMP port or host unreachable (``connection_refused``, ``host_unreachable``), and a certificate
that does not validate (``ssl_*``). Steps never raise on a network failure.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from probe.model.observations import QUICObservation
from probe.net.clock import Clock

SKIPPED_NO_LIBRARY = "QUIC step skipped: aioquic not installed (pip install 'blockprobe[quic]')"
DEFAULT_BODY_CAP = 16 * 1024  # bytes of the HTTP/3 page read before the connection is closed


def available() -> bool:
    """Whether the QUIC library is installed (looked up without importing it)."""
    return importlib.util.find_spec("aioquic") is not None


async def handshake(
    ip: str,
    sni: str,
    *,
    port: int = 443,
    deadline: float,
    clock: Clock,
    ca_file: Path | None = None,
    control: bool = False,
    path: str | None = None,
    user_agent: str = "blockprobe",
    body_cap: int = DEFAULT_BODY_CAP,
) -> QUICObservation:
    """Handshake with ``ip:port`` sending ``sni`` before ``deadline``; then GET ``path`` over
    HTTP/3 (at most ``body_cap`` body bytes) when one is given. A control (``control=True``)
    does not verify the certificate: it only has to show that the server answers QUIC."""
    if not available():
        now = clock.now()
        return QUICObservation(
            ip=ip, port=port, sni=sni, control=control, skipped=SKIPPED_NO_LIBRARY, t0=now, t=now
        )
    from probe.steps import quicclient  # imports aioquic

    return await quicclient.run(
        ip,
        sni,
        port=port,
        deadline=deadline,
        clock=clock,
        ca_file=ca_file,
        control=control,
        path=path,
        user_agent=user_agent,
        body_cap=body_cap,
    )
