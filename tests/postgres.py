"""A schema of a test's own in the machine's PostgreSQL (skipped when it cannot be reached)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_schema(prefix: str) -> Iterator[str]:
    """Yield a URL whose search_path is a fresh schema ``prefix_<hex>``, dropped afterwards."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
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
