"""Which Ed25519 public keys a collector accepts: canonical encodings of points of large order.

RFC 8032 verification accepts some keys that prove nothing: a point of small order (the identity
among them) "signs" many messages with a forged signature, and a non-canonical encoding (y not
reduced modulo p, or the sign bit set with x = 0) names the same point as another key. Both are
refused at enrolment. The check decodes the point and multiplies it by the cofactor 8: a point of
small order becomes the identity.
"""

from __future__ import annotations

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


class WeakKeyError(ValueError):
    """A public key that is not a canonical encoding of a point of large order."""


def _decode(raw: bytes) -> Point:
    if len(raw) != 32:
        raise WeakKeyError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    number = int.from_bytes(raw, "little")
    sign = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= P:
        raise WeakKeyError("non-canonical encoding (y is not reduced modulo p)")
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * SQRT_M1) % P
        if (v * x * x - u) % P != 0:
            raise WeakKeyError("not a point on the curve")
    if x == 0 and sign:
        raise WeakKeyError("non-canonical encoding (sign bit set for x = 0)")
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, (x * y) % P)


def _double(point: Point) -> Point:
    x1, y1, z1, _t1 = point
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = (a + b) % P
    e = (h - (x1 + y1) * (x1 + y1)) % P
    g = (a - b) % P
    f = (c + g) % P
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def check_public_key(raw: bytes) -> None:
    """Raise ``WeakKeyError`` unless ``raw`` is a canonical encoding of a large-order point."""
    point = _decode(raw)
    for _ in range(3):  # times 8, the cofactor
        point = _double(point)
    x, y, z, _t = point
    if x % P == 0 and (y - z) % P == 0:
        raise WeakKeyError("a point of small order (it would verify forged signatures)")
