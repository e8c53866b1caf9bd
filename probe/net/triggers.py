"""The payloads that trigger a censor: a real TLS ClientHello with an SNI, an HTTP request's Host.

The ClientHello comes from Python's own ``ssl`` module (through memory BIOs, no socket), so the
packet probes send the same bytes as the probe's TLS step does, not a hand-made imitation.
"""

from __future__ import annotations

import ssl
from typing import Literal

Trigger = Literal["tls", "http"]
DEFAULT_PORTS: dict[Trigger, int] = {"tls": 443, "http": 80}
ALPN = ("h2", "http/1.1")


def client_hello(sni: str) -> bytes:
    """The TLS record(s) of a ClientHello carrying ``sni``."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(list(ALPN))
    tls = context.wrap_bio(ssl.MemoryBIO(), (outgoing := ssl.MemoryBIO()), server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # expected: the hello is written and the handshake waits for the server
    return outgoing.read()


def http_request(host: str, path: str = "/") -> bytes:
    """A minimal HTTP/1.1 GET for ``path`` with ``host`` as Host."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode("ascii")


def payload(trigger: Trigger, host: str) -> bytes:
    """The bytes that carry ``host`` for ``trigger``."""
    return client_hello(host) if trigger == "tls" else http_request(host)
