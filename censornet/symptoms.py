"""Low-level network symptoms, independent of any classifier, for proving what a scenario does.

Run inside a vantage point as ``python -m censornet.symptoms KIND ARGS``; it prints one JSON line.
Kinds: ``dns`` (raw UDP query: rcode, answers, every response within a window), ``connect`` (TCP:
ok, refused, reset, timeout, unreachable), ``tls`` (handshake with an SNI to an address: outcome,
certificate issuer, whether it validates against a CA file), ``quic`` (a QUIC handshake with an
SNI: ok, timeout, closed; ``censornet.quicsymptom``), ``http`` (one request: status, title,
Location) and ``rate`` (download or upload through one connection: bytes, seconds, kbit/s).
Failures are data, never exceptions: each result has an ``outcome``.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import html
import json
import os
import re
import socket
import ssl
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import h11
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

if TYPE_CHECKING:
    from censornet.quicsymptom import QuicSymptom

DEFAULT_TIMEOUT = 3.0
CHUNK = 64 * 1024
MAX_PAGE = 256 * 1024
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}
# OpenSSL reasons for alerts received whose names lack "ALERT" (unrecognized_name is alert 112).
_ALERT_REASONS = {
    "TLSV1_UNRECOGNIZED_NAME",
    "TLSV1_UNSUPPORTED_EXTENSION",
    "TLSV1_CERTIFICATE_UNOBTAINABLE",
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE",
    "TLSV1_BAD_CERTIFICATE_HASH_VALUE",
}


def failure(exc: BaseException) -> str:
    """A short outcome name for a network exception (reset, timeout, eof, alert, ...)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "eof"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        return "alert" if "ALERT" in reason or reason in _ALERT_REASONS else "tls_error"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return "unreachable"
    return "error"


# --- DNS --------------------------------------------------------------------------------------


@dataclass
class DnsResponse:
    """One response to the query."""

    rcode: str
    answers: list[str]
    ms: float


@dataclass
class DnsSymptom:
    """Everything that came back for one query within the window."""

    kind: str
    server: str
    name: str
    outcome: str  # answer | timeout | error
    rcode: str | None = None
    answers: list[str] = field(default_factory=list)
    responses: int = 0
    all: list[DnsResponse] = field(default_factory=list)


def dns_query(
    server: str,
    name: str,
    *,
    rdtype: str = "A",
    port: int = 53,
    timeout: float = DEFAULT_TIMEOUT,
    window: float = 1.0,
) -> DnsSymptom:
    """Send one UDP query and collect every matching response.

    Waits up to ``timeout`` for the first response, and keeps listening until ``window`` seconds
    after sending, so an injected answer and the real one are both counted.
    """
    result = DnsSymptom("dns", server, name, "timeout")
    query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sent = time.monotonic()
        try:
            sock.sendto(query.to_wire(), (server, port))
        except OSError as exc:
            result.outcome = failure(exc)
            return result
        while True:
            now = time.monotonic()
            deadline = sent + (window if result.all else max(timeout, window))
            if now >= deadline:
                break
            sock.settimeout(deadline - now)
            try:
                wire, source = sock.recvfrom(65535)
            except TimeoutError:
                break
            except OSError as exc:
                result.outcome = failure(exc)
                break
            if source[0] != server:
                continue
            try:
                response = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            if not query.is_response(response):
                continue
            addresses = [
                rdata.to_text()
                for rrset in response.answer
                if rrset.rdtype == dns.rdatatype.A
                for rdata in rrset
            ]
            ms = round((time.monotonic() - sent) * 1000, 1)
            result.all.append(DnsResponse(dns.rcode.to_text(response.rcode()), addresses, ms))
    if result.all:
        result.outcome = "answer"
        result.rcode = result.all[0].rcode
        result.answers = result.all[0].answers
        result.responses = len(result.all)
    return result


# --- TCP and TLS ------------------------------------------------------------------------------


@dataclass
class ConnectSymptom:
    """The outcome of one TCP connect."""

    kind: str
    ip: str
    port: int
    outcome: str  # ok | refused | reset | timeout | unreachable | error
    ms: float
    error: str | None = None


def connect(ip: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> ConnectSymptom:
    """Open (and close) one TCP connection to ``ip:port``."""
    started = time.monotonic()
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError as exc:
        return ConnectSymptom("connect", ip, port, failure(exc), _ms(started), repr(exc))
    sock.close()
    return ConnectSymptom("connect", ip, port, "ok", _ms(started))


@dataclass
class TlsSymptom:
    """The outcome of one TLS handshake with an SNI to an address."""

    kind: str
    ip: str
    port: int
    sni: str
    outcome: str  # ok | reset | timeout | eof | alert | refused | unreachable | tls_error | error
    stage: str  # connect | handshake | done
    ms: float
    issuer: str | None = None
    subject: str | None = None
    valid: bool | None = None  # validates for ``sni`` against the CA file (None without one)
    version: str | None = None
    error: str | None = None


def tls_handshake(
    ip: str,
    sni: str,
    *,
    port: int = 443,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: Path | None = None,
) -> TlsSymptom:
    """Handshake with ``sni`` at ``ip:port`` (no verification), then check the certificate."""
    started = time.monotonic()
    result = TlsSymptom("tls", ip, port, sni, "ok", "connect", 0.0)
    try:
        raw = socket.create_connection((ip, port), timeout=timeout)
    except OSError as exc:
        result.outcome, result.ms, result.error = failure(exc), _ms(started), repr(exc)
        return result
    result.stage = "handshake"
    try:
        with _insecure_context().wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            result.version = tls.version()
    except OSError as exc:
        raw.close()
        result.outcome, result.ms, result.error = failure(exc), _ms(started), repr(exc)
        return result
    result.stage, result.ms = "done", _ms(started)
    if der:
        leaf = x509.load_der_x509_certificate(der)
        result.issuer = leaf.issuer.rfc4514_string()
        result.subject = leaf.subject.rfc4514_string()
        if ca_file is not None:
            result.valid = validates(leaf, sni, ca_file)
    return result


def validates(leaf: x509.Certificate, name: str, ca_file: Path) -> bool:
    """Whether ``leaf`` (issued directly by a CA in ``ca_file``) is valid for ``name``."""
    store = Store(x509.load_pem_x509_certificates(ca_file.read_bytes()))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    try:
        verifier.verify(leaf, [])
    except VerificationError:
        return False
    return True


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class HttpSymptom:
    """The outcome of one HTTP request (page body read up to 256 KiB)."""

    kind: str
    url: str
    ip: str
    outcome: str  # ok | reset | timeout | eof | refused | unreachable | alert | error
    stage: str  # connect | handshake | request | response | done
    ms: float
    status: int | None = None
    title: str | None = None
    location: str | None = None
    bytes: int = 0
    error: str | None = None


def http_get(url: str, *, ip: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> HttpSymptom:
    """GET ``url`` (from ``ip`` if given, else the URL's host) and read the page."""
    target = _Target.of(url, ip)
    started = time.monotonic()
    result = HttpSymptom("http", url, target.ip, "ok", "connect", 0.0)
    try:
        sock = socket.create_connection((target.ip, target.port), timeout=timeout)
        result.stage = "handshake" if target.https else "request"
        sock = target.secure(sock)
        result.stage = "request"
        with sock:
            conn, head = target.request("GET")
            sock.sendall(head)
            result.stage = "response"
            result.status, headers, body = _read_response(sock, conn)
            result.location = headers.get("location")
            expected = min(int(headers.get("content-length", MAX_PAGE)), MAX_PAGE)
            while len(body) < expected and (data := sock.recv(CHUNK)):
                body += data
    except OSError as exc:
        result.outcome, result.ms, result.error = failure(exc), _ms(started), repr(exc)
        return result
    except ValueError as exc:
        result.outcome, result.ms, result.error = "eof", _ms(started), str(exc)
        return result
    result.stage, result.ms, result.bytes = "done", _ms(started), len(body)
    match = _TITLE.search(body)
    if match:
        result.title = html.unescape(match[1].decode("utf-8", "replace")).strip()
    return result


# --- throughput -------------------------------------------------------------------------------


@dataclass
class RateSymptom:
    """The goodput of one transfer over one connection."""

    kind: str
    url: str
    ip: str
    direction: str  # down | up
    outcome: str  # complete | capped | stall | reset | timeout | eof | refused | ... | error
    bytes: int
    seconds: float
    kbps: float
    status: int | None = None
    error: str | None = None


def rate(
    url: str,
    *,
    ip: str | None = None,
    nbytes: int = 1024 * 1024,
    upload: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_seconds: float = 5.0,
    idle: float = 2.0,
    sni: str | None = None,
) -> RateSymptom:
    """Download (GET) or upload (POST) ``nbytes`` through one connection, for at most
    ``max_seconds``; no data for ``idle`` seconds in the middle of a download is a stall.
    ``sni`` replaces the URL's host in the TLS handshake only (the Host header keeps it)."""
    target = _Target.of(url, ip, sni)
    direction = "up" if upload else "down"
    result = RateSymptom("rate", url, target.ip, direction, "complete", 0, 0.0, 0.0)
    try:
        sock = target.open(timeout)
    except OSError as exc:
        result.outcome, result.error = failure(exc), repr(exc)
        return result
    with sock:
        try:
            if upload:
                _upload(sock, target, nbytes, max_seconds, timeout, result)
            else:
                _download(sock, target, nbytes, max_seconds, timeout, idle, result)
        except OSError as exc:
            result.outcome, result.error = failure(exc), repr(exc)
        except ValueError as exc:
            result.outcome, result.error = "eof", str(exc)
    if result.seconds > 0:
        result.kbps = round(result.bytes * 8 / result.seconds / 1000, 1)
    return result


def _download(
    sock: socket.socket,
    target: _Target,
    nbytes: int,
    max_seconds: float,
    timeout: float,
    idle: float,
    result: RateSymptom,
) -> None:
    started = time.monotonic()
    conn, head = target.request("GET", extra=(("Range", f"bytes=0-{nbytes - 1}"),))
    sock.sendall(head)
    result.status, _, body = _read_response(sock, conn)
    received, last = len(body), time.monotonic()
    sock.settimeout(idle)
    while received < nbytes:
        if time.monotonic() - started >= max_seconds:
            result.outcome = "capped"
            break
        try:
            data = sock.recv(CHUNK)
        except TimeoutError:
            result.outcome = "stall"
            break
        if not data:
            result.outcome = "eof"
            break
        received, last = received + len(data), time.monotonic()
    result.bytes, result.seconds = received, round(last - started, 3)


def _upload(
    sock: socket.socket,
    target: _Target,
    nbytes: int,
    max_seconds: float,
    timeout: float,
    result: RateSymptom,
) -> None:
    started = time.monotonic()
    conn, head = target.request("POST", extra=(("Content-Length", str(nbytes)),))
    sock.sendall(head)
    block = os.urandom(16 * 1024)
    sent = 0
    sock.settimeout(timeout)
    while sent < nbytes:
        if time.monotonic() - started >= max_seconds:
            result.outcome = "capped"
            result.bytes = max(0, sent - _unacknowledged(sock))
            result.seconds = round(time.monotonic() - started, 3)
            return
        piece = block[: min(len(block), nbytes - sent)]
        sock.sendall(piece)
        sent += len(piece)
    result.status, _, _ = _read_response(sock, conn)
    result.bytes, result.seconds = nbytes, round(time.monotonic() - started, 3)


def _unacknowledged(sock: socket.socket) -> int:
    """Bytes still in the kernel's send queue (SIOCOUTQ), not yet acknowledged by the peer."""
    value = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int.from_bytes(value, sys.byteorder)


# --- shared plumbing --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Where a URL's request goes: scheme, host (Host header and SNI), address, port, path, and
    an SNI other than the host when given (a benign-SNI control with the platform's Host)."""

    https: bool
    host: str
    ip: str
    port: int
    path: str
    sni: str | None = None

    @classmethod
    def of(cls, url: str, ip: str | None, sni: str | None = None) -> _Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(https, parts.hostname, ip or parts.hostname, port, path, sni)

    def open(self, timeout: float) -> socket.socket:
        return self.secure(socket.create_connection((self.ip, self.port), timeout=timeout))

    def secure(self, sock: socket.socket) -> socket.socket:
        """``sock`` after a TLS handshake with SNI ``host`` (unchanged for http)."""
        if not self.https:
            return sock
        try:
            return _insecure_context().wrap_socket(sock, server_hostname=self.sni or self.host)
        except OSError:
            sock.close()
            raise

    def request(
        self, method: str, *, extra: tuple[tuple[str, str], ...] = ()
    ) -> tuple[h11.Connection, bytes]:
        """An h11 client connection and the bytes of its request head (a body, when ``extra``
        declares one, is the caller's to send)."""
        conn = h11.Connection(h11.CLIENT)
        headers = [
            ("Host", self.host),
            ("User-Agent", "blockprobe-symptoms"),
            ("Accept", "*/*"),
            *extra,
            ("Connection", "close"),
        ]
        head = conn.send(h11.Request(method=method, target=self.path, headers=headers))
        if not any(name.lower() == "content-length" for name, _ in extra):
            conn.send(h11.EndOfMessage())
        return conn, head or b""


def _insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def _read_response(sock: socket.socket, conn: h11.Connection) -> tuple[int, dict[str, str], bytes]:
    """The response's status, headers and the body bytes that came with its head, parsed by h11
    (ValueError on a close before the head or on something that is not HTTP)."""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(CHUNK))
            elif isinstance(event, h11.Response):
                break
            elif not isinstance(event, h11.InformationalResponse):
                raise ValueError("connection closed before the response head")
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        body = bytearray()
        while isinstance(data := conn.next_event(), h11.Data):
            body += data.data
    except h11.RemoteProtocolError as exc:
        raise ValueError(f"not an HTTP response: {exc}") from None
    return event.status_code, headers, bytes(body)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


Symptom = DnsSymptom | ConnectSymptom | TlsSymptom | HttpSymptom | RateSymptom


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m censornet.symptoms", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True)
    p = kinds.add_parser("dns", help="one raw UDP query; every response within --window")
    p.add_argument("server")
    p.add_argument("name")
    p.add_argument("--type", default="A")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--window", type=float, default=1.0)
    p = kinds.add_parser("connect", help="one TCP connect")
    p.add_argument("ip")
    p.add_argument("port", type=int)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p = kinds.add_parser("tls", help="one TLS handshake with an SNI to an address")
    p.add_argument("ip")
    p.add_argument("sni")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--ca", type=Path, default=_default_ca())
    p = kinds.add_parser("quic", help="one QUIC handshake (h3) with an SNI to an address")
    p.add_argument("ip")
    p.add_argument("sni")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--ca", type=Path, default=_default_ca())
    p = kinds.add_parser("http", help="one HTTP(S) GET")
    p.add_argument("url")
    p.add_argument("--ip")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p = kinds.add_parser("rate", help="goodput of one download (or --upload)")
    p.add_argument("url")
    p.add_argument("--ip")
    p.add_argument("--bytes", type=int, default=1024 * 1024)
    p.add_argument("--upload", action="store_true")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--idle", type=float, default=2.0)
    p.add_argument("--sni", help="TLS SNI instead of the URL's host (Host header unchanged)")
    return parser


def _default_ca() -> Path | None:
    value = os.environ.get("BLOCKPROBE_CA_FILE")
    return Path(value) if value else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one symptom probe and print its result as one JSON line."""
    args = _parser().parse_args(argv)
    result: Symptom | QuicSymptom
    if args.kind == "dns":
        result = dns_query(
            args.server,
            args.name,
            rdtype=args.type,
            port=args.port,
            timeout=args.timeout,
            window=args.window,
        )
    elif args.kind == "connect":
        result = connect(args.ip, args.port, timeout=args.timeout)
    elif args.kind == "tls":
        result = tls_handshake(
            args.ip, args.sni, port=args.port, timeout=args.timeout, ca_file=args.ca
        )
    elif args.kind == "http":
        result = http_get(args.url, ip=args.ip, timeout=args.timeout)
    elif args.kind == "quic":
        from censornet.quicsymptom import quic_handshake  # aioquic only for this kind

        result = quic_handshake(
            args.ip, args.sni, port=args.port, timeout=args.timeout, ca_file=args.ca
        )
    else:
        result = rate(
            args.url,
            ip=args.ip,
            nbytes=args.bytes,
            upload=args.upload,
            timeout=args.timeout,
            max_seconds=args.max_seconds,
            idle=args.idle,
            sni=args.sni,
        )
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
