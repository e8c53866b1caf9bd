"""Fixtures: a migrated collector database (SQLite, or PostgreSQL in a schema of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.db import make_engine
from collectors.migrations import migrate
from collectors.store import Store
from tests.postgres import postgres_schema
from tests.reports.factories import load_scenario


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'collector.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    for url in postgres_schema("bp_reports"):
        eng = make_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'collector.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def loaded(engine: Engine) -> tuple[Engine, dict[str, list[str]]]:
    """The scenario of ``factories`` ingested: (engine, bundle digests by probe name)."""
    return engine, load_scenario(Store(engine))


@pytest.fixture
def loaded_sqlite(sqlite_engine: Engine) -> tuple[Engine, dict[str, list[str]]]:
    return sqlite_engine, load_scenario(Store(sqlite_engine))
