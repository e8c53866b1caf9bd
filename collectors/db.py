"""Database engines: SQLite (WAL, synchronous=FULL) by default, PostgreSQL via psycopg (no JIT).

Write transactions go through ``write_transaction``: on SQLite it begins ``IMMEDIATE`` so that
concurrent writers queue on the lock instead of failing to upgrade a read transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://...``)."""
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        event.listen(engine, "connect", _postgres_session)
        return engine
    engine = create_engine(
        url,
        pool_size=20,  # about the threadpool's size: requests wait on SQLite's lock, not the pool
        max_overflow=20,
        connect_args={"timeout": 60, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_session(dbapi_conn: Any, _record: Any) -> None:
    """No JIT: reports' statements are short, and compiling them cost more than running them
    (EXPLAIN ANALYZE of the incidents' run ranges: 430 ms of JIT in 700 ms). Sorts of a month's
    run ranges (about 12 MB) stay in memory."""
    with dbapi_conn.cursor() as cursor:
        cursor.execute("SET jit = off")
        cursor.execute("SET work_mem = '32MB'")
    dbapi_conn.commit()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that commits on success and rolls back on error."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn
