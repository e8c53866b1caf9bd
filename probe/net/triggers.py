"""The payloads that trigger a censor: a real TLS ClientHello with an SNI, an HTTP request's Host.

The ClientHello comes from Python's own ``ssl`` module (through memory BIOs, no socket) with the
probe's one TLS client context (``probe.net.tlsclient``), so the packet probes send the hello the
TLS step and the HTTP fetch send, not a hand-made imitation.
"""

from __future__ import annotations

from typing import Literal

from probe.net.tlsclient import client_hello

Trigger = Literal["tls", "http"]
DEFAULT_PORTS: dict[Trigger, int] = {"tls": 443, "http": 80}
__all__ = ["DEFAULT_PORTS", "Trigger", "client_hello", "http_request", "payload"]


def http_request(host: str, path: str = "/") -> bytes:
    """A minimal HTTP/1.1 GET for ``path`` with ``host`` as Host."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode("ascii")


def payload(trigger: Trigger, host: str) -> bytes:
    """The bytes that carry ``host`` for ``trigger``."""
    return client_hello(host) if trigger == "tls" else http_request(host)
