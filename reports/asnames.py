"""Operator names for networks: from an ASN-to-name dataset, else the probes' own label.

The dataset is a text file with one network per line, ``ASN NAME`` (an ``AS`` prefix is allowed),
as RIPE NCC publishes its maintained ``asn.txt`` (``3320 DTAG Internet service provider
operations, DE``); lines that do not start with a number are skipped. It is named by the
``BLOCKPROBE_ASN_NAMES`` environment variable. Without a name there, a network is called by the
``vantage.network`` label its probes put on their measurements (e.g. ``lab-isp1``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

ENV = "BLOCKPROBE_ASN_NAMES"


def parse(text: str) -> dict[int, str]:
    """ASN -> name from the dataset's lines."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        number, _, name = line.strip().partition(" ")
        number = number.removeprefix("AS").removeprefix("as")
        if number.isdigit() and name.strip():
            names[int(number)] = name.strip()
    return names


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict[int, str]:
    return parse(Path(path).read_text(encoding="utf-8", errors="replace"))


def dataset() -> dict[int, str]:
    """The dataset named by ``BLOCKPROBE_ASN_NAMES`` (empty when unset or unreadable)."""
    path = os.environ.get(ENV)
    if not path:
        return {}
    try:
        return _load(path, Path(path).stat().st_mtime)
    except OSError:
        return {}


def operator(asn: int, label: str | None) -> str | None:
    """The network's name: the dataset's, else the probes' label, else None."""
    return dataset().get(asn) or label
