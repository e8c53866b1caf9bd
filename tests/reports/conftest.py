"""Fixtures: a migrated collector database (SQLite, or PostgreSQL in a schema of its own)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from collectors.db import make_engine
from collectors.migrations import migrate
from collectors.store import Store
from tests.reports.factories import load_scenario

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _postgres() -> Iterator[str]:
    schema = f"bp_reports_{secrets.token_hex(4)}"
    try:
        admin = create_engine(PG, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # any failure to reach it means: no PostgreSQL here
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'collector.db'}")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    for url in _postgres():
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
