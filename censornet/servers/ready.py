"""The ready file: a lab process says it is listening by creating it, atomically."""

from __future__ import annotations

import os
from pathlib import Path


def write_ready(path: Path) -> None:
    """Atomically create the ready file (content: our PID)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)
