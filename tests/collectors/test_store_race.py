"""Two transactions storing the same bundle at once on PostgreSQL: one stores it, one is told so."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from collectors.db import make_engine
from collectors.migrations import migrate
from collectors.store import Store
from tests.postgres import postgres_schema

pytestmark = pytest.mark.slow


@pytest.fixture
def store() -> Iterator[Store]:
    for url in postgres_schema("bp_race"):
        engine = make_engine(url)
        migrate(engine)
        store = Store(engine)
        store.enroll("k" * 16, b"\x01" * 32, network=("PK", 64500), voucher="open")
        yield store
        engine.dispose()


def _waiting_on_a_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return int(waiting) > 0


def test_same_bundle_stored_while_waiting_for_the_head_lock(store: Store) -> None:
    """The second transaction read the digest before the first committed it: it answers
    "already stored" with the first's index, and stores nothing (no 500, no second leaf)."""
    holding, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        holding.set()
        release.wait(30)
        return None

    digest = "ab" * 32
    first: list[tuple[bool, int]] = []
    second: list[tuple[bool, int]] = []
    a = threading.Thread(
        target=lambda: first.append(store.add_bundle(digest, "k" * 16, b"{}", [], spend=hold))
    )
    a.start()
    assert holding.wait(30)
    b = threading.Thread(
        target=lambda: second.append(store.add_bundle(digest, "k" * 16, b"{}", []))
    )
    b.start()
    for _ in range(300):  # until the second waits on the head row's lock (bounded)
        if _waiting_on_a_lock(store):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the second transaction never waited on the log head's lock")
    release.set()
    a.join(30)
    b.join(30)
    assert first == [(True, 0)]
    assert second == [(False, 0)]
    assert store.log_size() == 1
