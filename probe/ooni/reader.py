"""Reading OONI measurements from files: JSON, JSONL and JSONC, one file or a folder.

A file holds one measurement (JSON), one per line (JSONL, as OONI's S3 archive and API serve
them), or a list. ``//`` comment lines are dropped (JSONC, as probe-cli's test data). A document
with ``queries`` and no ``test_keys`` is a bare ``test_keys`` object: it is wrapped, and its
input is taken from the name it resolved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".json", ".jsonl", ".jsonc")


class ReadError(ValueError):
    """A file that is not OONI measurement JSON."""


@dataclass(frozen=True)
class Loaded:
    """One measurement as read, with where it came from."""

    source: str  # "path" or "path:line"
    data: dict[str, Any]


def files_in(path: Path) -> list[Path]:
    """The measurement files at ``path``: the file itself, or every JSON file under a folder."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        return [p for p in found if _is_measurement_file(p)]
    if not path.exists():
        raise ReadError(f"{path}: no such file or folder")
    return [path]


def _is_measurement_file(path: Path) -> bool:
    """Skip OONI's own analysis outputs kept next to a measurement (analysis*.json ...)."""
    return not path.name.startswith(("analysis", "observations"))


def read(path: Path, skipped: list[str] | None = None) -> Iterator[Loaded]:
    """Every measurement in ``path`` (a file or a folder), in file order.

    In a folder, a JSON file that holds no measurement (labels, notes) is skipped, with the
    reason appended to ``skipped``; a file named on its own must be measurements.
    """
    folder = path.is_dir()
    for file in files_in(path):
        try:
            found = list(_read_file(file))
        except ReadError as exc:
            if not folder:
                raise
            if skipped is not None:
                skipped.append(str(exc))
            continue
        yield from found


def _read_file(file: Path) -> Iterator[Loaded]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"{file}: cannot read: {exc}") from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    body = "\n".join(lines).strip()
    if not body:
        return
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        document = None
    if document is not None:
        items = document if isinstance(document, list) else [document]
        for index, item in enumerate(items):
            where = str(file) if len(items) == 1 else f"{file}:{index + 1}"
            yield Loaded(where, _measurement(item, where))
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(f"{where}: not JSON: {exc.msg}") from None
        yield Loaded(where, _measurement(item, where))


def _measurement(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ReadError(f"{where}: not a JSON object")
    if "test_keys" not in item and "queries" in item:
        return {"input": _input_of(item), "test_keys": item, "test_name": "web_connectivity"}
    if not isinstance(item.get("test_keys"), dict):
        raise ReadError(f"{where}: no test_keys: not an OONI measurement")
    return item


def _input_of(test_keys: dict[str, Any]) -> str | None:
    """The URL a bare test_keys object measured, from the first name its probe resolved."""
    for query in test_keys.get("queries") or []:
        if isinstance(query, dict) and query.get("hostname"):
            return f"https://{query['hostname']}/"
    return None
