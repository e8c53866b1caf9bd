"""Where the OONI test set lives (``../shared/ooni`` from the repository root), read in place.

Tests that need it skip with a clear message when the folder is not there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "ooni"
DATA = SHARED / "data"
FINGERPRINTS = SHARED / "fingerprints"
MISSING = (
    f"the OONI test set is not at {SHARED} (../shared/ooni from the repository root): "
    "these tests read OONI's measurements and fingerprint lists in place"
)
needs_set = pytest.mark.skipif(not DATA.is_dir(), reason=MISSING)
needs_fingerprints = pytest.mark.skipif(not FINGERPRINTS.is_dir(), reason=MISSING)


def name_of(source: str) -> str:
    """A measurement's short name: its path under data/, without ``/measurement.json``."""
    relative = Path(source).resolve().relative_to(DATA.resolve()).as_posix()
    return relative.removesuffix("/measurement.json")
