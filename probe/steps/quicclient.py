"""The QUIC step's client on aioquic: one connection driven by hand over a connected UDP socket.

Driving ``QuicConnection`` directly (rather than ``aioquic.asyncio.connect``) lets the step see
what a censor does to the packets: every datagram is counted, a Version Negotiation packet is read
before aioquic discards it, an ICMP error on the socket ends the try at once, and a
CONNECTION_CLOSE from the peer is told from one aioquic sends itself (a certificate it refuses).
Imported only by ``probe.steps.quic`` when a QUIC step runs.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted
from aioquic.quic.packet import QuicErrorCode

from probe.model.failures import Failure
from probe.model.observations import QuicClose, QUICObservation
from probe.net.clock import Clock
from probe.net.errors import classify_exception

QUIC_V1 = 0x00000001
CRYPTO_ERROR = int(QuicErrorCode.CRYPTO_ERROR)  # 0x100 + the TLS alert
BAD_CERTIFICATE_ALERTS = frozenset({42, 43, 44, 45, 46, 48})  # bad_certificate ... unknown_ca


@dataclass
class _Outcome:
    """What one connection showed, filled in as packets come and go."""

    sent: int = 0
    received: int = 0
    failure: Failure | None = None
    close: QuicClose | None = None
    error_code: int | None = None
    frame_type: int | None = None
    reason: str | None = None
    versions: tuple[str, ...] = ()
    handshake_at: float | None = None
    alpn: str | None = None
    status: int | None = None
    body: int = 0
    done: bool = False
    headers_seen: bool = False
    queue: asyncio.Queue[bytes | Exception] = field(default_factory=asyncio.Queue)


class _Connection(QuicConnection):
    """aioquic's connection, remembering a CONNECTION_CLOSE that came from the peer."""

    peer_close: tuple[int, int | None, str] | None = None

    def _handle_connection_close_frame(self, context, frame_type, buf):  # type: ignore[no-untyped-def]
        start = buf.tell()
        error_code = buf.pull_uint_var()
        closing_frame = buf.pull_uint_var() if frame_type == 0x1C else None
        length = buf.pull_uint_var()
        reason = buf.pull_bytes(length).decode("utf8", errors="replace")
        self.peer_close = (error_code, closing_frame, reason)
        buf.seek(start)
        super()._handle_connection_close_frame(context, frame_type, buf)


class _Socket(asyncio.DatagramProtocol):
    """Hands every datagram, and every ICMP error the kernel reports, to the outcome's queue."""

    def __init__(self, outcome: _Outcome) -> None:
        self.outcome = outcome

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.outcome.received += len(data)
        self.outcome.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.outcome.queue.put_nowait(exc)


async def run(
    ip: str,
    sni: str,
    *,
    port: int,
    deadline: float,
    clock: Clock,
    ca_file: Path | None,
    control: bool,
    path: str | None,
    user_agent: str,
    body_cap: int,
) -> QUICObservation:
    """One QUIC connection: the handshake, then the GET of ``path`` when one is given."""
    t0 = clock.now()
    outcome = _Outcome()
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=sni,
        verify_mode=ssl.CERT_NONE if control else ssl.CERT_REQUIRED,
        cafile=str(ca_file) if ca_file is not None and not control else None,
    )
    loop = asyncio.get_running_loop()
    transport: asyncio.DatagramTransport | None = None
    try:
        async with asyncio.timeout_at(deadline):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Socket(outcome), remote_addr=(ip, port)
            )
            conn = _Connection(configuration=configuration)
            conn.connect((ip, port), now=loop.time())
            await _drive(
                conn,
                transport,
                outcome,
                clock,
                (ip, port),
                (sni, path, user_agent),
                body_cap,
                deadline,
            )
    except TimeoutError:
        if outcome.handshake_at is None:  # a GET left unanswered shows as no status
            outcome.failure = Failure.TIMEOUT
    except OSError as exc:
        outcome.failure = classify_exception(exc)
    finally:
        if transport is not None:
            transport.close()
    return QUICObservation(
        ip=ip,
        port=port,
        sni=sni,
        control=control,
        failure=outcome.failure,
        version=f"0x{QUIC_V1:08x}" if outcome.handshake_at is not None else None,
        alpn=outcome.alpn,
        cert_valid=None if control or outcome.handshake_at is None else True,
        close=outcome.close,
        error_code=outcome.error_code,
        frame_type=outcome.frame_type,
        reason=outcome.reason,
        versions=outcome.versions,
        handshake_seconds=(
            round(outcome.handshake_at - t0, 6) if outcome.handshake_at is not None else None
        ),
        status=outcome.status,
        body_length=outcome.body if outcome.status is not None else None,
        sent=outcome.sent,
        received=outcome.received,
        t0=t0,
        t=clock.now(),
    )


async def _drive(
    conn: _Connection,
    transport: asyncio.DatagramTransport,
    outcome: _Outcome,
    clock: Clock,
    peer: tuple[str, int],
    request: tuple[str, str | None, str],
    body_cap: int,
    deadline: float,
) -> None:
    """Move packets between ``conn`` and the socket until the step has its answer, or raise
    TimeoutError at ``deadline``.

    The deadline is checked here as well as by the caller's ``asyncio.timeout_at``: a packet
    that arrives as that timeout fires can swallow its cancellation (Python 3.11's
    ``asyncio.wait_for``), and a policed transfer would then run on long past the deadline."""
    sni, path, user_agent = request
    loop = asyncio.get_running_loop()
    h3: H3Connection | None = None
    stream_id: int | None = None
    while True:
        for data, _ in conn.datagrams_to_send(now=loop.time()):
            outcome.sent += len(data)
            transport.sendto(data)
        if outcome.done:
            return
        now = loop.time()
        if now >= deadline:
            raise TimeoutError
        timer = conn.get_timer()
        wake = deadline if timer is None else min(timer, deadline)
        item = await _next_datagram(outcome.queue, wake)
        if item is None:
            if loop.time() >= deadline:
                raise TimeoutError
            conn.handle_timer(now=loop.time())
        if isinstance(item, Exception):
            _icmp(outcome, item)
            return
        if item is not None:
            if _version_negotiation(item, outcome):
                return
            conn.receive_datagram(item, peer, loop.time())
        while (event := conn.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                outcome.handshake_at = clock.now()
                outcome.alpn = event.alpn_protocol
                if path is None:
                    conn.close()
                    outcome.done = True
                    continue
                h3 = H3Connection(conn)
                stream_id = conn.get_next_available_stream_id()
                h3.send_headers(stream_id, _request(sni, path, user_agent), end_stream=True)
            elif isinstance(event, ConnectionTerminated):
                _terminated(conn, event, outcome)
                return
            elif h3 is not None:
                for h3_event in h3.handle_event(event):
                    if _response(h3_event, stream_id, outcome, body_cap):
                        conn.close()
                        outcome.done = True
        if conn.peer_close is not None and outcome.handshake_at is None:
            _peer_closed(conn.peer_close, outcome)
            return


async def _next_datagram(
    queue: asyncio.Queue[bytes | Exception], wake: float
) -> bytes | Exception | None:
    """The next datagram (or socket error) from ``queue``, or None at loop time ``wake``."""
    try:
        async with asyncio.timeout_at(wake):
            return await queue.get()
    except TimeoutError:
        return None


def _request(sni: str, path: str, user_agent: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", sni.encode("ascii")),
        (b":path", path.encode("ascii")),
        (b"user-agent", user_agent.encode("ascii")),
    ]


def _response(event: object, stream_id: int | None, outcome: _Outcome, body_cap: int) -> bool:
    """Take in one HTTP/3 event of the GET; True when the step has read enough."""
    if isinstance(event, HeadersReceived) and event.stream_id == stream_id:
        if not outcome.headers_seen:
            outcome.headers_seen = True
            for name, value in event.headers:
                if name == b":status":
                    outcome.status = int(value)
        return event.stream_ended
    if isinstance(event, DataReceived) and event.stream_id == stream_id:
        outcome.body += len(event.data)
        return event.stream_ended or outcome.body >= body_cap
    return False


def _version_negotiation(data: bytes, outcome: _Outcome) -> bool:
    """Record a Version Negotiation packet (long header, version 0); True when it ends the try:
    it offers no version this client speaks (aioquic would otherwise drop it silently)."""
    if len(data) < 7 or not data[0] & 0x80 or data[1:5] != b"\x00\x00\x00\x00":
        return False
    at = 6 + data[5]  # past the destination connection ID
    if at >= len(data):
        return False
    at += 1 + data[at]  # past the source connection ID
    versions = [
        f"0x{int.from_bytes(data[i : i + 4], 'big'):08x}" for i in range(at, len(data) - 3, 4)
    ]
    outcome.versions = tuple(versions)
    if f"0x{QUIC_V1:08x}" in versions:
        return False
    outcome.failure = Failure.QUIC_INCOMPATIBLE_VERSION
    outcome.close = "version_negotiation"
    return True


def _icmp(outcome: _Outcome, exc: Exception) -> None:
    """The kernel reported an ICMP error for the socket (port or host unreachable)."""
    outcome.failure = classify_exception(exc)
    outcome.close = "icmp"


def _peer_closed(peer: tuple[int, int | None, str], outcome: _Outcome) -> None:
    outcome.error_code, outcome.frame_type, outcome.reason = peer
    outcome.failure = Failure.QUIC_CLOSED
    outcome.close = "connection_close"


def _terminated(conn: _Connection, event: ConnectionTerminated, outcome: _Outcome) -> None:
    """The connection ended: by the peer's CONNECTION_CLOSE, or by aioquic itself."""
    if conn.peer_close is not None:
        if outcome.handshake_at is None:
            _peer_closed(conn.peer_close, outcome)
        return
    if outcome.handshake_at is not None:
        return  # our own close after the GET, or after the handshake of a control
    alert = event.error_code - CRYPTO_ERROR
    if 0 <= alert < 256 and alert in BAD_CERTIFICATE_ALERTS:
        reason = event.reason_phrase.lower()
        outcome.failure = (
            Failure.SSL_INVALID_HOSTNAME
            if "hostname" in reason
            else Failure.SSL_UNKNOWN_AUTHORITY
            if "issuer" in reason or "self" in reason or "unknown" in reason
            else Failure.SSL_INVALID_CERTIFICATE
        )
    else:
        outcome.failure = Failure.UNKNOWN
    outcome.error_code, outcome.frame_type = event.error_code, event.frame_type
    outcome.reason = event.reason_phrase
