"""Build ``data/fingerprints.json`` from OONI's blocking-fingerprints CSV files.

    python -m probe.fingerprints.make ../shared/ooni/fingerprints

Reads ``fingerprints_http.csv`` and ``fingerprints_dns.csv`` (columns name, scope, other_names,
location_found, pattern_type, pattern, confidence_no_fp, expected_countries, source, ...) and
writes the rows the classifier matches, with where they came from (repository, commit, files and
their SHA-256). The CSV files themselves are not part of this repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "data" / "fingerprints.json"
REPOSITORY = "https://github.com/ooni/blocking-fingerprints"
FILES = ("fingerprints_http.csv", "fingerprints_dns.csv")
PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})
_COMMIT = re.compile(r"ooni/blocking-fingerprints @ ([0-9a-f]{40})")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in rows]


def _entry(row: dict[str, str], path: Path) -> dict[str, Any]:
    kind = row["pattern_type"]
    if kind not in PATTERN_TYPES:
        raise ValueError(f"{path.name}: {row['name']}: unknown pattern_type {kind!r}")
    if kind == "regexp":
        re.compile(row["pattern"])  # refuse a pattern Python cannot use
    return {
        "name": row["name"],
        "scope": row["scope"],
        "location": row["location_found"],
        "pattern_type": kind,
        "pattern": row["pattern"],
        "countries": [c for c in row.get("expected_countries", "").split(",") if c],
    }


def build(folder: Path, commit: str | None) -> dict[str, Any]:
    """The data file's content from the CSV files in ``folder``."""
    http = [_entry(r, folder / FILES[0]) for r in _rows(folder / FILES[0]) if r.get("name")]
    dns = [_entry(r, folder / FILES[1]) for r in _rows(folder / FILES[1]) if r.get("name")]
    digests = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}
    return {
        "source": {"repository": REPOSITORY, "commit": commit, "files": digests},
        "http": http,
        "dns": dns,
    }


def _commit_of(folder: Path) -> str | None:
    """The commit the shared folder's SOURCES.md records for the CSV files, if it says."""
    sources = folder.parent / "SOURCES.md"
    found = _COMMIT.search(sources.read_text(encoding="utf-8")) if sources.is_file() else None
    return found.group(1) if found else None


def main(argv: list[str]) -> int:
    """Write the data file; exit status 2 with a message when the CSV folder is unusable."""
    if len(argv) != 1:
        print("usage: python -m probe.fingerprints.make CSV_FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        print(f"{folder}: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        data = build(folder, _commit_of(folder))
    except (KeyError, ValueError, re.error) as exc:
        print(f"{folder}: {exc}", file=sys.stderr)
        return 2
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUTPUT}: {len(data['http'])} HTTP and {len(data['dns'])} DNS fingerprints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
