"""Rate limits shared by every collector worker: token buckets in the collector's database.

Each take is one atomic upsert on a ``rate_buckets`` row (``collectors.schema``), so workers and
collector processes on one database spend one budget, whatever ``--workers`` says. The clock is
the wall clock (``time.time``), which every process shares. Buckets are named: ``bundles:<key
id>`` (bundles per key), ``enrol`` (enrolment requests) and ``auth-failures`` (failed
authentications). No bucket is keyed by a client address: the collector never stores one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, bindparam, case, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from collectors.db import write_transaction
from collectors.schema import rate_buckets


class SharedRateLimiter:
    """``rate`` tokens per second up to ``burst`` per bucket name; one token per take."""

    def __init__(
        self,
        engine: Engine,
        rate: float,
        burst: int,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.rate = rate
        self.burst = float(burst)
        self.prefix = prefix
        self.clock = clock
        self._stmt = self._build()

    def _build(self) -> object:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(rate_buckets).values(
            name=bindparam("name"),
            tokens=literal(self.burst - 1.0),
            updated=bindparam("now"),
            allowed=1,
        )
        b = rate_buckets.c
        refill = b.tokens + (bindparam("now") - b.updated) * literal(self.rate)
        available = case((refill > literal(self.burst), literal(self.burst)), else_=refill)
        return stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "tokens": case((available >= 1.0, available - 1.0), else_=available),
                "updated": bindparam("now"),
                "allowed": case((available >= 1.0, 1), else_=0),
            },
        ).returning(b.tokens, b.allowed)

    def take(self, key: str) -> float | None:
        """Spend a token of bucket ``key``: None if allowed, else seconds until one is available."""
        with write_transaction(self.engine) as conn:
            return self.take_in(conn, key)

    def empty(self, key: str) -> float | None:
        """Seconds until bucket ``key`` holds a token again, None if it holds one (spends none)."""
        b = rate_buckets.c
        name = f"{self.prefix}{key}"[:100]
        with self.engine.connect() as conn:
            row = conn.execute(select(b.tokens, b.updated).where(b.name == name)).first()
        if row is None:
            return None
        tokens = min(
            self.burst, float(row.tokens) + (self.clock() - float(row.updated)) * self.rate
        )
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take_in(self, conn: Connection, key: str) -> float | None:
        """``take`` inside the caller's write transaction (ingest: one commit per bundle)."""
        name = f"{self.prefix}{key}"[:100]
        tokens, allowed = conn.execute(self._stmt, {"name": name, "now": self.clock()}).one()  # type: ignore[call-overload]
        if allowed:
            return None
        return max(0.0, (1.0 - float(tokens)) / self.rate)
