"""Shared fixtures: one mock censor network for every lab test of the session that asks for it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from censornet.lab import Lab


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the probe's loop), not on every anyio backend."""
    return "asyncio"


@pytest.fixture(scope="session")
def session_lab() -> Iterator[Lab]:
    """A lab with its own prefix, brought up once and always torn down."""
    lab = Lab.up(f"bps{os.getpid()}")
    try:
        yield lab
    finally:
        lab.down()
