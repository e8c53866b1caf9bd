"""TLS ClientHello framing and SNI extraction, for servers that decide before the handshake.

Only what the lab needs: the length of the first handshake message across TLS records, the SNI
host name, and the bytes of a fatal alert record.
"""

from __future__ import annotations

import asyncio

RECORD_HEADER = 5
HANDSHAKE = 0x16
MAX_CLIENT_HELLO = 64 * 1024
ALERT_HANDSHAKE_FAILURE = bytes((0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28))  # fatal, code 40


def hello_bytes_needed(data: bytes) -> int | None:
    """How many bytes of ``data`` hold the whole ClientHello (None: not yet known/complete).

    Raises ValueError when ``data`` is not a TLS handshake.
    """
    payload = bytearray()
    offset = 0
    while offset + RECORD_HEADER <= len(data):
        if data[offset] != HANDSHAKE:
            raise ValueError("not a TLS handshake record")
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        end = offset + RECORD_HEADER + length
        if end > len(data):
            return None
        payload += data[offset + RECORD_HEADER : end]
        offset = end
        if len(payload) >= 4:
            if payload[0] != 0x01:
                raise ValueError("first handshake message is not a ClientHello")
            if len(payload) >= 4 + int.from_bytes(payload[1:4], "big"):
                return offset
    if offset == 0 and data and data[0] != HANDSHAKE:
        raise ValueError("not a TLS handshake record")
    if offset > MAX_CLIENT_HELLO:
        raise ValueError("ClientHello too large")
    return None


def parse_sni(data: bytes) -> str | None:
    """The server_name host of the ClientHello at the start of ``data`` (None when absent/bad)."""
    try:
        hello = _handshake_payload(data)
        return _sni_from_hello(hello)
    except (ValueError, IndexError):
        return None


def sni_of_client_hello(body: bytes) -> str | None:
    """The server_name host of a ClientHello message body (after its 4-byte handshake header),
    as QUIC carries it in CRYPTO frames (None when absent or malformed)."""
    try:
        return _sni_from_hello(body)
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


async def read_client_hello(reader: asyncio.StreamReader) -> bytes:
    """Read the TLS records that carry the whole ClientHello (raises ValueError/IncompleteRead)."""
    data = b""
    while True:
        needed = hello_bytes_needed(data)
        if needed is not None:
            return data
        if len(data) > MAX_CLIENT_HELLO:
            raise ValueError("ClientHello too large")
        header = await reader.readexactly(RECORD_HEADER)
        if header[0] != HANDSHAKE:
            raise ValueError("not a TLS handshake record")
        body = await reader.readexactly(int.from_bytes(header[3:5], "big"))
        data += header + body


def _handshake_payload(data: bytes) -> bytes:
    payload = bytearray()
    offset = 0
    while offset + RECORD_HEADER <= len(data):
        if data[offset] != HANDSHAKE:
            break
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        payload += data[offset + RECORD_HEADER : offset + RECORD_HEADER + length]
        offset += RECORD_HEADER + length
    if len(payload) < 4 or payload[0] != 0x01:
        raise ValueError("no ClientHello")
    return bytes(payload[4 : 4 + int.from_bytes(payload[1:4], "big")])


def _sni_from_hello(hello: bytes) -> str | None:
    pos = 2 + 32  # legacy_version, random
    pos += 1 + hello[pos]  # session id
    pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
    pos += 1 + hello[pos]  # compression methods
    if pos + 2 > len(hello):
        return None
    end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= end:
        ext_type = int.from_bytes(hello[pos : pos + 2], "big")
        ext_len = int.from_bytes(hello[pos + 2 : pos + 4], "big")
        ext = hello[pos + 4 : pos + 4 + ext_len]
        pos += 4 + ext_len
        if ext_type != 0:
            continue
        inner = 2  # server_name_list length
        while inner + 3 <= len(ext):
            name_type = ext[inner]
            name_len = int.from_bytes(ext[inner + 1 : inner + 3], "big")
            name = ext[inner + 3 : inner + 3 + name_len]
            inner += 3 + name_len
            if name_type == 0:
                return name.decode("ascii").lower()
        return None
    return None
