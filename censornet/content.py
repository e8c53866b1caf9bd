"""What the lab's web origins serve, written as files that nginx serves from the state directory.

Sizes and shapes come from ``content.toml`` (which says where each figure comes from): X's front
page is a large HTML document pulling scripts from abs.twimg.com and images from pbs.twimg.com,
and those objects exist at their paths with their sizes. Per site a directory holds its front page
(``index.html``) and its objects; every other path falls back to the large object
(``_large.bin``, a hard link to one file). ``_default`` holds what the default servers and an
outage answer with.
"""

from __future__ import annotations

import html
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from censornet import topology
from censornet.servers import pages

DEFAULT_ROOT = "_default"
LARGE_OBJECT = "_large.bin"
CONTENT_FILE = Path(__file__).with_name("content.toml")


@dataclass(frozen=True)
class SiteObject:
    """One object a site serves at ``path``, of ``size`` bytes."""

    site: str
    path: str
    size: int
    media_type: str


@dataclass(frozen=True)
class FrontPage:
    """A site's front page: its size and what it pulls in."""

    size: int
    scripts: tuple[str, ...]
    images: tuple[str, ...]


@dataclass(frozen=True)
class Content:
    """Every sized page and object of the lab."""

    front_pages: dict[str, FrontPage]
    objects: tuple[SiteObject, ...]


def load_content(path: Path = CONTENT_FILE) -> Content:
    """Read ``content.toml`` (raises ValueError naming the bad entry)."""
    data = tomllib.loads(path.read_text())
    fronts: dict[str, FrontPage] = {}
    for site, spec in data.get("sites", {}).items():
        if site not in topology.SITES:
            raise ValueError(f"{path}: unknown site {site!r}")
        fronts[site] = FrontPage(
            size=int(spec["front_page"]),
            scripts=tuple(spec.get("scripts", ())),
            images=tuple(spec.get("images", ())),
        )
    objects = []
    for spec in data.get("objects", ()):
        if spec["site"] not in topology.SITES or not str(spec["path"]).startswith("/"):
            raise ValueError(f"{path}: bad object {spec!r}")
        objects.append(SiteObject(spec["site"], spec["path"], int(spec["bytes"]), spec["type"]))
    return Content(front_pages=fronts, objects=tuple(objects))


def front_page(site: str, page: FrontPage) -> bytes:
    """A front page of exactly ``page.size`` bytes shaped like a web app's HTML shell: the
    scripts and images it pulls, and an inline initial state padding it to size."""
    title = html.escape(pages.TITLES.get(site, site))
    head = [
        '<!DOCTYPE html>\n<html dir="ltr" lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{title}</title>\n",
        *(f'<link rel="preload" as="script" href="{html.escape(s)}">\n' for s in page.scripts),
    ]
    tail = [
        "</head>\n<body>\n",
        f"<h1>{title}</h1>\n",
        *(f'<img alt="" src="{html.escape(i)}">\n' for i in page.images),
        *(f'<script src="{html.escape(s)}" defer></script>\n' for s in page.scripts),
        "</body>\n</html>\n",
    ]
    start = "".join(head) + '<script type="application/json" id="initial-state">'
    end = "</script>\n" + "".join(tail)
    room = page.size - len(start.encode()) - len(end.encode())
    if room < 2:
        raise ValueError(f"front page of {site} cannot be {page.size} bytes")
    entries: list[str] = []
    filler = 0
    while filler < room:
        entry = json.dumps({"id": str(10**18 + len(entries)), "text": "lab timeline entry"})
        entries.append(entry)
        filler += len(entry) + 1
    state = ("[" + ",".join(entries) + "]").encode()[:room]
    return start.encode() + state.ljust(room, b" ") + end.encode()


def object_bytes(size: int) -> bytes:
    """Deterministic bytes for an object of ``size`` (the large object's pattern)."""
    return pages.large_object_bytes(0, size)


def write_tree(www: Path, content: Content | None = None) -> None:
    """Create the content tree under ``www`` (idempotent)."""
    content = content or load_content()
    objects = www / "_objects"
    objects.mkdir(parents=True, exist_ok=True)
    large = objects / "large.bin"
    if not large.exists() or large.stat().st_size != topology.LARGE_OBJECT_BYTES:
        _write(large, pages.large_object_bytes(0, topology.LARGE_OBJECT_BYTES))
    default = www / DEFAULT_ROOT
    default.mkdir(exist_ok=True)
    _write(default / "_outage.html", pages.outage_page().encode())
    for site in topology.SITES:
        root = www / site
        root.mkdir(exist_ok=True)
        page = content.front_pages.get(site)
        body = front_page(site, page) if page else pages.site_page(site).encode()
        _write(root / "index.html", body)
        link = root / LARGE_OBJECT
        if not link.exists():
            os.link(large, link)
    for item in content.objects:
        target = www / item.site / item.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, object_bytes(item.size))


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)
