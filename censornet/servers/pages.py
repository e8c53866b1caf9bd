"""What the lab's web servers say: per-site pages, the large object, error and block pages.

Everything here is deterministic, so a probe (and a test) can compare bodies byte for byte.
"""

from __future__ import annotations

import html
import random
from collections.abc import AsyncIterator

from censornet import topology
from censornet.policy import name_matches

TITLES: dict[str, str] = {
    "x": "X. It's what's happening / X",
    "twimg": "X. It's what's happening / X",
    "youtube": "YouTube",
    "facebook": "Facebook - log in or sign up",
    "instagram": "Instagram",
    "whatsapp": "WhatsApp | Secure and Reliable Free Private Messaging and Calling",
    "telegram": "Telegram Messenger",
    "wikipedia": "Wikipedia",
    "tiktok": "TikTok - Make Your Day",
    "signal": "Signal >> Home",
    "example": "Example Domain",
}
DEFAULT_SITE = "x"
# Sites whose port 80 redirects to https like the real ones; the others answer on http too.
HTTPS_ONLY_SITES = frozenset(set(topology.SITES) - {"example", "wikipedia"})
BLOCKPAGE_TITLE = "Surf Safely! This site is restricted"
OUTAGE_TITLE = "Something went wrong"
CHUNK = 256 * 1024
_PATTERN = random.Random(20240217).randbytes(1024 * 1024)  # test data, not secrets

_SITE_OF_NAME = {name: site for site, names in topology.SITES.items() for name in names}
_SITE_OF_IP = {
    ip: _SITE_OF_NAME[name]
    for name, ips in topology.ZONE.items()
    if name in _SITE_OF_NAME
    for ip in ips
}
_SITE_OF_IP[topology.X_CDN_ALT_IP] = "x"


def site_for_name(name: str) -> str | None:
    """The site serving ``name`` (exact name, else a subdomain of a site name), or None."""
    name = name.lower().rstrip(".")
    if name in _SITE_OF_NAME:
        return _SITE_OF_NAME[name]
    for known, site in _SITE_OF_NAME.items():
        if name_matches(name, known):
            return site
    return None


def site_for_ip(ip: str) -> str | None:
    """The site whose address is ``ip`` (X_CDN_ALT_IP serves x), or None."""
    return _SITE_OF_IP.get(ip)


def primary_name(site: str) -> str:
    """The first DNS name of ``site``."""
    return topology.SITES[site][0]


def site_page(site: str) -> str:
    """The stable front page of ``site``."""
    title = html.escape(TITLES.get(site, site))
    names = ", ".join(topology.SITES.get(site, ()))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
        f"<p>This is the blockprobe lab's stand-in for the {html.escape(site)} site "
        f"({html.escape(names)}).</p>\n"
        "<p>Its content never changes, so measurements can compare it byte for byte.</p>\n"
        "</body>\n</html>\n"
    )


def outage_page() -> str:
    """The body of a platform that is down ("Something went wrong")."""
    return (
        f"<!DOCTYPE html>\n<html><head><title>{OUTAGE_TITLE}</title></head>\n"
        f"<body><h1>{OUTAGE_TITLE}</h1><p>Try reloading.</p></body></html>\n"
    )


def blockpage(host: str) -> str:
    """A national regulator's notice for ``host``, in the style of the PTA's blockpage."""
    host = html.escape(host or "this site")
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{BLOCKPAGE_TITLE}</title>\n</head>\n<body>\n"
        f"<h1>{BLOCKPAGE_TITLE}</h1>\n"
        f"<p>The site you are trying to access ({host}) contains content that is prohibited "
        "for viewing within the country under Section 37 of the Prevention of Electronic "
        "Crimes Act (PECA) 2016.</p>\n"
        "<p>Pakistan Telecommunication Authority (lab)</p>\n</body>\n</html>\n"
    )


def blockpage_frame(host: str) -> str:
    """The page an ISP proxy injects: an iframe to the regulator's warning page."""
    title = html.escape(BLOCKPAGE_TITLE)
    src = f"http://{topology.BLOCKPAGE_NAME}/?host={html.escape(host)}"
    return (
        f'<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body style="margin:0">'
        f'<iframe src="{src}" style="width:100%;height:100%;border:0"></iframe>'
        "</body></html>\n"
    )


def large_object_bytes(start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of the large object (a repeated random block)."""
    out = bytearray()
    size = len(_PATTERN)
    pos = start
    while pos < end:
        offset = pos % size
        take = min(size - offset, end - pos)
        out += _PATTERN[offset : offset + take]
        pos += take
    return bytes(out)


async def stream_large_object(start: int, end: int) -> AsyncIterator[bytes]:
    """Yield bytes ``start`` to ``end`` (exclusive) of the large object in CHUNK pieces."""
    pos = start
    while pos < end:
        stop = min(pos + CHUNK, end)
        yield large_object_bytes(pos, stop)
        pos = stop


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """The ``(start, end_exclusive)`` of a single ``bytes=`` range, or None when unsatisfiable.

    Raises ValueError for a header that is not a single byte range.
    """
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise ValueError(f"unsupported Range {value!r}")
    first, _, last = spec.strip().partition("-")
    if not first:
        suffix = int(last)
        return (max(size - suffix, 0), size) if suffix > 0 else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        return None
    return start, end
