"""What the lab's web origins serve, written as files that nginx serves from the state directory.

Per site a directory with its front page (``index.html``) and the large object (``_large.bin``,
a hard link to one file) that every other path falls back to; ``_default`` holds what the default
servers and an outage answer with.
"""

from __future__ import annotations

import os
from pathlib import Path

from censornet import topology
from censornet.servers import pages

DEFAULT_ROOT = "_default"
LARGE_OBJECT = "_large.bin"


def write_tree(www: Path) -> None:
    """Create the content tree under ``www`` (idempotent)."""
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
        _write(root / "index.html", pages.site_page(site).encode())
        link = root / LARGE_OBJECT
        if not link.exists():
            os.link(large, link)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)
