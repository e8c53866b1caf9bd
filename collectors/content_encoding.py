"""Request bodies in a content encoding: gzip is inflated, under the same limit as the wire.

Probes send bundles with ``Content-Encoding: gzip``. ``BodyLimit`` bounds the bytes on the wire;
the decompressed bytes are bounded again here, inflated a bounded piece at a time, so a small body
that would expand enormously is refused without ever being expanded whole.
"""

from __future__ import annotations

import zlib

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate data
PIECE = 64 * 1024  # compressed bytes inflated at a time


class TooLarge(Exception):
    """What the body decompresses to exceeds the limit."""


class UnsupportedEncoding(Exception):
    """The body is in a content encoding other than identity or gzip."""


class BadEncoding(Exception):
    """The body does not decompress (not gzip, or truncated)."""


def decoded(body: bytes, limit: int, encoding: str | None) -> bytes:
    """``body`` as sent (identity) or inflated (gzip), at most ``limit`` bytes either way."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        if len(body) > limit:
            raise TooLarge
        return body
    if coding != "gzip":
        raise UnsupportedEncoding(coding)
    inflate = zlib.decompressobj(GZIP_WBITS)
    parts: list[bytes] = []
    size = 0
    for start in range(0, len(body), PIECE):
        data = body[start : start + PIECE]
        while data:
            try:
                piece = inflate.decompress(data, limit + 1 - size)
            except zlib.error as exc:
                raise BadEncoding(str(exc)) from None
            size += len(piece)
            if size > limit:
                raise TooLarge
            parts.append(piece)
            data = inflate.unconsumed_tail
    if not inflate.eof:
        raise BadEncoding("the gzip stream is truncated")
    if inflate.unused_data:
        raise BadEncoding("data after the end of the gzip stream")
    return b"".join(parts)
