"""QUIC v1 Initial packets as a censor reads and forges them (RFC 9000 17.2.2, RFC 9001 5).

Initial packets are encrypted with keys anyone can derive from the client's Destination
Connection ID, so an on-path censor can decrypt the first flight and read the ClientHello's SNI
(what Russia's and China's QUIC filters do). ``read_client_initial`` does that: it removes the
header protection, decrypts the payload with AES-128-GCM, gathers the CRYPTO frames and parses the
SNI. ``forge_close`` builds what the server would send to end the handshake: a server Initial
carrying a CONNECTION_CLOSE frame, encrypted with the server's Initial keys for the same DCID.
The primitives are ``cryptography``'s (HKDF, AES-GCM, AES-ECB for the header protection mask).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from censornet.servers.clienthello import sni_of_client_hello

QUIC_V1 = 1
INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
SAMPLE = 16
TAG = 16
MIN_INITIAL = 1200  # a client's Initial datagram is padded to at least this


@dataclass(frozen=True)
class Keys:
    """One direction's Initial packet protection: AEAD key, IV and header protection key."""

    key: bytes
    iv: bytes
    hp: bytes


@dataclass(frozen=True)
class ClientInitial:
    """What a censor reads from a client's first Initial packet."""

    dcid: bytes
    scid: bytes
    packet_number: int
    crypto: bytes  # the CRYPTO frames' bytes from offset 0, as far as they are contiguous
    sni: str | None


def _expand_label(secret: bytes, label: str, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context."""
    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(secret)


def initial_keys(dcid: bytes, *, server: bool) -> Keys:
    """The Initial keys of the client's (or the server's) packets for client DCID ``dcid``."""
    extract = hmac.HMAC(INITIAL_SALT_V1, hashes.SHA256())  # HKDF-Extract(salt, dcid)
    extract.update(dcid)
    initial_secret = extract.finalize()
    secret = _expand_label(initial_secret, "server in" if server else "client in", 32)
    return Keys(
        key=_expand_label(secret, "quic key", 16),
        iv=_expand_label(secret, "quic iv", 12),
        hp=_expand_label(secret, "quic hp", 16),
    )


def _mask(hp: bytes, sample: bytes) -> bytes:
    """The header protection mask (RFC 9001 5.4.3: AES-ECB of the sample)."""
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    return encryptor.update(sample) + encryptor.finalize()


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A QUIC variable-length integer at ``at``: (value, offset after it)."""
    first = data[at]
    length = 1 << (first >> 6)
    value = first & 0x3F
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    if at + length > len(data):
        raise ValueError("truncated varint")
    return value, at + length


def _encode_varint(value: int) -> bytes:
    for length, prefix in ((1, 0x00), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * length - 2):
            raw = value.to_bytes(length, "big")
            return bytes([raw[0] | prefix]) + raw[1:]
    raise ValueError("varint too large")


def read_client_initial(datagram: bytes) -> ClientInitial | None:
    """Decrypt the client Initial packet at the start of ``datagram`` (None when it is not one:
    another packet type or version, or it does not decrypt)."""
    try:
        return _read(datagram)
    except (ValueError, IndexError, InvalidTag):
        return None


def _read(data: bytes) -> ClientInitial | None:
    if len(data) < 7 or data[0] & 0xC0 != 0xC0 or (data[0] >> 4) & 0x03 != 0:
        return None  # not a long-header Initial
    if int.from_bytes(data[1:5], "big") != QUIC_V1:
        return None
    at = 5
    dcid = data[at + 1 : at + 1 + data[at]]
    at += 1 + data[at]
    scid = data[at + 1 : at + 1 + data[at]]
    at += 1 + data[at]
    token_length, at = _varint(data, at)
    at += token_length
    length, pn_offset = _varint(data, at)
    end = pn_offset + length
    if end > len(data) or length < 4 + SAMPLE:
        return None
    keys = initial_keys(dcid, server=False)
    mask = _mask(keys.hp, data[pn_offset + 4 : pn_offset + 4 + SAMPLE])
    first = data[0] ^ (mask[0] & 0x0F)
    pn_length = (first & 0x03) + 1
    pn_bytes = bytes(
        b ^ m for b, m in zip(data[pn_offset : pn_offset + pn_length], mask[1:], strict=False)
    )
    header = bytes([first]) + data[1:pn_offset] + pn_bytes
    packet_number = int.from_bytes(pn_bytes, "big")
    nonce = bytes(a ^ b for a, b in zip(keys.iv, packet_number.to_bytes(12, "big"), strict=True))
    payload = AESGCM(keys.key).decrypt(nonce, data[pn_offset + pn_length : end], header)
    crypto = _crypto_stream(payload)
    return ClientInitial(dcid, scid, packet_number, crypto, _sni(crypto))


def _crypto_stream(payload: bytes) -> bytes:
    """The CRYPTO frames of a decrypted Initial payload, in offset order, from offset 0."""
    pieces: dict[int, bytes] = {}
    at = 0
    while at < len(payload):
        kind = payload[at]
        if kind == 0x00 or kind == 0x01:  # PADDING, PING
            at += 1
        elif kind == 0x06:  # CRYPTO: offset, length, data
            offset, at = _varint(payload, at + 1)
            length, at = _varint(payload, at)
            pieces[offset] = payload[at : at + length]
            at += length
        elif kind in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges
            _, at = _varint(payload, at + 1)
            _, at = _varint(payload, at)
            count, at = _varint(payload, at)
            _, at = _varint(payload, at)
            for _ in range(2 * count + (3 if kind == 0x03 else 0)):
                _, at = _varint(payload, at)
        else:
            break  # a frame an Initial does not carry first: stop reading
    stream = b""
    for offset in sorted(pieces):
        if offset > len(stream):
            break
        stream += pieces[offset][len(stream) - offset :]
    return stream


def _sni(crypto: bytes) -> str | None:
    """The SNI of the ClientHello handshake message at the start of ``crypto``."""
    if len(crypto) < 4 or crypto[0] != 0x01:
        return None
    length = int.from_bytes(crypto[1:4], "big")
    if len(crypto) < 4 + length:
        return None  # split across packets: this censor reads the first one only
    return sni_of_client_hello(crypto[4 : 4 + length])


def forge_close(initial: ClientInitial, error_code: int, reason: str = "") -> bytes:
    """A server Initial packet that closes the connection ``initial`` opens (CONNECTION_CLOSE,
    transport type 0x1c, naming the CRYPTO frame), as the server itself would send it."""
    keys = initial_keys(initial.dcid, server=True)
    reason_bytes = reason.encode("utf-8")
    frame = (
        bytes([0x1C])
        + _encode_varint(error_code)
        + _encode_varint(0x06)
        + _encode_varint(len(reason_bytes))
        + reason_bytes
    )
    payload = frame + bytes(max(0, 32 - len(frame)))  # room for the header protection sample
    pn_length, packet_number = 1, 0
    scid = os.urandom(8)
    length = pn_length + len(payload) + TAG
    first = 0xC0 | (pn_length - 1)
    header = (
        bytes([first])
        + QUIC_V1.to_bytes(4, "big")
        + bytes([len(initial.scid)])
        + initial.scid
        + bytes([len(scid)])
        + scid
        + _encode_varint(0)  # no token
        + _encode_varint(length)
    )
    pn_offset = len(header)
    header += packet_number.to_bytes(pn_length, "big")
    nonce = bytes(a ^ b for a, b in zip(keys.iv, packet_number.to_bytes(12, "big"), strict=True))
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    mask = _mask(keys.hp, sealed[4 - pn_length : 4 - pn_length + SAMPLE])
    protected = bytearray(header + sealed)
    protected[0] ^= mask[0] & 0x0F
    for i in range(pn_length):
        protected[pn_offset + i] ^= mask[1 + i]
    return bytes(protected)
