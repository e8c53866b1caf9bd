"""A written dashboard whose links work from the file: the linked bundles' pages beside it.

The page and the pages of every bundle it links to (and of their measurements) are asked of a
collector (running, or opened in-process on its data directory) with ``links=files``, and
written as ``OUTPUT`` and ``bundles/DIGEST.html``, ``bundles/DIGEST/N.html`` beside it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reports.evidence_pack import Getter, refusal_detail

BUNDLE_LINK = re.compile(r"bundles/([0-9a-f]{64})\.html")
MEASUREMENT_LINK = re.compile(r"bundles/[0-9a-f]{64}/([0-9]+)\.html")


def _text(client: Getter, url: str, params: dict[str, Any]) -> str:
    response = client.get(url, params=params)
    if response.status_code != 200:
        detail = refusal_detail(response)
        raise ValueError(f"the collector answered {response.status_code} for {url}: {detail}")
    text: str = response.text
    return text


def write_dashboard(client: Getter, params: dict[str, Any], output: Path) -> int:
    """Write the dashboard to ``output`` and its bundles' pages; returns how many pages."""
    page = _text(client, "/dashboard", {**params, "links": "files"})
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page)
    folder = output.parent / "bundles"
    written = 0
    for digest in sorted(set(BUNDLE_LINK.findall(page))):
        folder.mkdir(exist_ok=True)
        bundle = _text(client, f"/bundles/{digest}", {"links": "files"})
        (folder / f"{digest}.html").write_text(bundle)
        written += 1
        for index in sorted(set(MEASUREMENT_LINK.findall(bundle)), key=int):
            (folder / digest).mkdir(exist_ok=True)
            one = _text(client, f"/bundles/{digest}/{index}", {"links": "files"})
            (folder / digest / f"{index}.html").write_text(one)
            written += 1
    return written
