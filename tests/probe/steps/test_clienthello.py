"""One ClientHello: the TLS step's measured handshake, the HTTP fetch, a throughput transfer and a
packet probe's trigger send the same hello in every field a DPI fingerprint reads (JA3's version,
cipher suites, extensions in order, groups and point formats; also ALPN, signature algorithms and
TLS versions), captured as raw bytes by a local server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from censornet.servers.clienthello import read_client_hello
from probe.net.clock import Clock, deadline_in
from probe.net.triggers import client_hello
from probe.steps import http, throughput, tls
from tests.probe.steps.servers import RawServer

pytestmark = pytest.mark.anyio

GREASE = {0x0A0A + 0x1010 * i for i in range(16)}  # RFC 8701 values, ignored by JA3


@dataclass(frozen=True)
class Fingerprint:
    """The fields of a ClientHello that DPI fingerprints (JA3 and its successors) read."""

    version: int
    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    groups: tuple[int, ...]
    point_formats: tuple[int, ...]
    alpn: tuple[str, ...]
    signature_algorithms: tuple[int, ...]
    supported_versions: tuple[int, ...]
    sni: str


def _u16s(data: bytes) -> tuple[int, ...]:
    return tuple(
        v
        for v in (int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        if v not in GREASE
    )


def fingerprint(records: bytes) -> Fingerprint:
    """Parse the ClientHello in ``records`` (TLS records, as sent on the wire)."""
    body = bytearray()
    offset = 0
    while offset + 5 <= len(records):
        assert 0x16 == records[offset], "a handshake record"
        length = int.from_bytes(records[offset + 3 : offset + 5], "big")
        body += records[offset + 5 : offset + 5 + length]
        offset += 5 + length
    assert 0x01 == body[0], "a ClientHello"
    hello = bytes(body[4 : 4 + int.from_bytes(body[1:4], "big")])
    version = int.from_bytes(hello[0:2], "big")
    at = 2 + 32  # legacy_version, random
    at += 1 + hello[at]  # session id
    n = int.from_bytes(hello[at : at + 2], "big")
    ciphers = _u16s(hello[at + 2 : at + 2 + n])
    at += 2 + n
    at += 1 + hello[at]  # compression methods
    end = at + 2 + int.from_bytes(hello[at : at + 2], "big")
    at += 2
    fields: dict[int, bytes] = {}
    order: list[int] = []
    while at < end:
        kind = int.from_bytes(hello[at : at + 2], "big")
        size = int.from_bytes(hello[at + 2 : at + 4], "big")
        fields[kind] = hello[at + 4 : at + 4 + size]
        if kind not in GREASE:
            order.append(kind)
        at += 4 + size
    alpn: list[str] = []
    raw = fields.get(16, b"\x00\x00")[2:]
    while raw:
        alpn.append(raw[1 : 1 + raw[0]].decode())
        raw = raw[1 + raw[0] :]
    sni = fields.get(0, b"")
    return Fingerprint(
        version=version,
        ciphers=ciphers,
        extensions=tuple(order),
        groups=_u16s(fields.get(10, b"\x00\x00")[2:]),
        point_formats=tuple(fields.get(11, b"\x00")[1:]),
        alpn=tuple(alpn),
        signature_algorithms=_u16s(fields.get(13, b"\x00\x00")[2:]),
        supported_versions=_u16s(fields.get(43, b"\x00")[1:]),
        sni=sni[5:].decode() if sni else "",
    )


class Recorder:
    """A TCP server that keeps the raw ClientHello of each connection, then hangs up."""

    def __init__(self) -> None:
        self.hellos: list[bytes] = []
        self.server = RawServer(self._handle)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.hellos.append(await read_client_hello(reader))
        finally:
            writer.close()


async def test_the_handshake_the_fetch_the_transfer_and_the_trigger_send_one_hello() -> None:
    """Four ways the probe opens TLS to a measured host; one fingerprint, offering HTTP/1.1."""
    recorder = Recorder()
    await recorder.server.start()
    port, clock = recorder.server.port, Clock()
    try:
        handshake = await tls.handshake(
            "127.0.0.1", "x.test", port=port, deadline=deadline_in(3.0), clock=clock
        )
        fetch = await http.fetch(
            f"https://x.test:{port}/", ip="127.0.0.1", deadline=deadline_in(3.0), clock=clock
        )
        transferred = await throughput.download(
            f"https://x.test:{port}/big.bin",
            ip="127.0.0.1",
            byte_budget=1 << 20,
            deadline=deadline_in(3.0),
            clock=clock,
        )
    finally:
        recorder.server.close()
    assert handshake.failure is not None and fetch.failure is not None  # the recorder hung up
    assert transferred.failure is not None
    assert len(recorder.hellos) >= 3
    seen = [fingerprint(hello) for hello in recorder.hellos]
    trigger = fingerprint(client_hello("x.test"))
    for other in seen:
        assert trigger == other
    assert ("http/1.1",) == trigger.alpn
    assert "x.test" == trigger.sni
    assert 16 in trigger.extensions and 43 in trigger.extensions  # ALPN, supported_versions
    assert len(trigger.ciphers) > 3 and trigger.groups and trigger.signature_algorithms


def test_the_parser_reads_what_it_is_given() -> None:
    """The fingerprint tells hellos apart: another SNI changes only the name."""
    a, b = fingerprint(client_hello("a.test")), fingerprint(client_hello("b.test"))
    assert a != b and a.ciphers == b.ciphers and ("a.test", "b.test") == (a.sni, b.sni)
