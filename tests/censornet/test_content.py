"""The lab's sized content: X's front page and the objects it pulls, at their sizes."""

from __future__ import annotations

import re
from pathlib import Path

from censornet.content import DEFAULT_ROOT, LARGE_OBJECT, load_content, write_tree
from censornet.servers.pages import TITLES


def test_x_front_page_is_large_and_pulls_scripts_and_images(tmp_path: Path) -> None:
    content = load_content()
    write_tree(tmp_path, content)
    page = (tmp_path / "x" / "index.html").read_bytes()
    assert content.front_pages["x"].size == len(page) > 200_000
    assert re.findall(rb'<script src="https://abs\.twimg\.com/[^"]+"', page)
    assert re.findall(rb'<img alt="" src="https://pbs\.twimg\.com/[^"]+"', page)
    assert b"<title>X. It&#x27;s what&#x27;s happening / X</title>" in page
    assert TITLES["x"] == "X. It's what's happening / X"


def test_every_object_the_page_names_exists_at_its_size(tmp_path: Path) -> None:
    content = load_content()
    write_tree(tmp_path, content)
    for item in content.objects:
        assert item.size == (tmp_path / item.site / item.path.lstrip("/")).stat().st_size
    x = content.front_pages["x"]
    served = {f"https://{host}{o.path}" for o in content.objects for host in ("abs.twimg.com",
              "pbs.twimg.com", "video.twimg.com")}  # fmt: skip
    for url in (*x.scripts, *x.images):
        assert url.split("?")[0] in served, url
    assert (tmp_path / "example" / LARGE_OBJECT).stat().st_nlink >= 2  # one large object, linked
    assert (tmp_path / DEFAULT_ROOT / "_outage.html").exists()


def test_writing_twice_changes_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path)
    before = {p: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()}
    write_tree(tmp_path)
    assert before == {p: p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()}
