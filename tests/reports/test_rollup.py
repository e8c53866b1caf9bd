"""Rollups at ingest match a recount of the stored measurements, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select, text, update

from collectors import schema
from collectors.migrations import MIGRATIONS, migrate
from collectors.rollup import FAILURES, GRAINS, bucket_of, family
from collectors.rollup_tables import ALL_TABLES, report_cells, report_confirmations, report_methods
from collectors.runs import report_runs

Key = tuple[str, int, str, str, int]


def vote(verdicts: Counter[str]) -> str:
    """A key's vote in a cell: its majority (failing: the most frequent; ties: most severe)."""
    total = sum(verdicts.values())
    failing = {k: verdicts[k] for k in ("blocked", "throttled", "outage")}
    if 2 * sum(failing.values()) > total:
        return max(
            failing, key=lambda k: (failing[k], -("blocked", "throttled", "outage").index(k))
        )
    return "reachable" if 2 * verdicts["reachable"] >= total else "inconclusive"


def run_of(verdicts: Counter[str]) -> str:
    """A bundle's run in a cell: its worst verdict, inconclusive only when nothing else."""
    for kind in ("blocked", "throttled", "outage", "reachable"):
        if verdicts[kind]:
            return kind
    return "inconclusive"


def recount(engine: Engine) -> dict[str, Any]:
    """The rollups recomputed from ``measurements`` and ``bundles`` in Python."""
    m, b = schema.measurements.c, schema.bundles.c
    cells: dict[Key, Counter[str]] = defaultdict(Counter)
    per_run: dict[tuple[Key, str, str], Counter[str]] = defaultdict(Counter)
    per_key: dict[tuple[Key, str], Counter[str]] = defaultdict(Counter)
    methods: Counter[tuple[Key, str]] = Counter()
    keys: dict[Key, set[str]] = defaultdict(set)
    agree: dict[tuple[Key, str], set[str]] = defaultdict(set)
    with engine.connect() as conn:
        rows = conn.execute(
            select(m.platform, m.country, m.asn, m.verdict, m.method, m.started_at, b.key_id)
            .add_columns(b.digest)
            .join(schema.bundles, b.digest == m.bundle_digest)
            .join(schema.probes, schema.probes.c.key_id == b.key_id)
            .where(schema.probes.c.revoked_at.is_(None))  # revoked keys leave the reports
        ).all()
    for platform, country, asn, verdict, method, started, kid, digest in rows:
        for grain in GRAINS:
            key = (grain, bucket_of(started, grain), platform, country or "ZZ", asn or 0)
            per_run[(key, kid, digest)][verdict] += 1
            cells[key]["measurements"] += 1
            keys[key].add(kid)
            if method:
                methods[(key, method)] += 1
            if verdict in FAILURES and grain == "hour":
                agree[(key, family(verdict, method))].add(kid)
    for key, kids in keys.items():
        cells[key]["probes"] = len(kids)
    for (key, kid, _digest), verdicts in per_run.items():
        per_key[(key, kid)][run_of(verdicts)] += 1  # a key's tally: its runs' verdicts
    for (key, _kid), verdicts in per_key.items():
        cells[key][vote(verdicts)] += 1  # one vote per key and cell
    confirmations = set()
    for (key, fam), kids in agree.items():
        if len(kids) >= 2:
            for grain in GRAINS:
                confirmations.add(((grain, bucket_of(key[1], grain), *key[2:]), fam))
    return {"cells": cells, "methods": methods, "confirmations": confirmations}


def stored(engine: Engine) -> dict[str, Any]:
    c, me, co = report_cells.c, report_methods.c, report_confirmations.c
    names = (
        "measurements",
        "probes",
        "reachable",
        "blocked",
        "throttled",
        "outage",
        "inconclusive",
    )
    with engine.connect() as conn:
        cells = {
            (r.grain, r.bucket, r.platform, r.country, r.asn): Counter(
                {n: getattr(r, n) for n in names if getattr(r, n)}
            )
            for r in conn.execute(select(report_cells))
        }
        methods = Counter(
            {
                ((r.grain, r.bucket, r.platform, r.country, r.asn), r.method): r.count
                for r in conn.execute(select(report_methods))
            }
        )
        confirmations = {
            ((r.grain, r.bucket, r.platform, r.country, r.asn), r.family)
            for r in conn.execute(select(report_confirmations))
        }
    del c, me, co
    return {"cells": cells, "methods": methods, "confirmations": confirmations}


def test_rollups_match_a_recount(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    engine, _ = loaded
    want, got = recount(engine), stored(engine)
    assert len(want["cells"]) == 2 * 4 * 10 + 2 * 4  # platforms x networks x (10 hours + 1 day)
    assert got["cells"] == want["cells"]
    assert got["methods"] == want["methods"]
    assert got["confirmations"] == want["confirmations"]
    # AS64500's block was seen by both its probes: confirmed; AS64501's single probe: not.
    families = {(k[0], k[4], f) for k, f in got["confirmations"]}
    assert ("day", 64500, "tls") in families
    assert not any(asn == 64501 for _, asn, _ in families)


def test_duplicate_bundle_does_not_count_twice(
    loaded: tuple[Engine, dict[str, list[str]]],
) -> None:
    from collectors.store import Store

    engine, digests = loaded
    before = stored(engine)
    store = Store(engine)
    created, _ = store.add_bundle(digests["a1"][0], "x" * 64, b"{}", [])
    assert not created
    assert stored(engine) == before


def test_migration_backfills_existing_measurements(
    loaded: tuple[Engine, dict[str, list[str]]],
) -> None:
    """A database at v2 (measurements, no rollups) gets its rollups built by the migration."""
    engine, _ = loaded
    want = recount(engine)
    with engine.connect() as conn:
        runs = sorted(conn.execute(select(report_runs)).all())
    with engine.begin() as conn:
        for table in reversed(ALL_TABLES):
            conn.execute(text(f"DROP TABLE {table.name}"))
        conn.execute(update(schema.schema_version).values(version=2))
    assert migrate(engine) == len(MIGRATIONS)
    with engine.connect() as conn:  # the runs rebuilt from the measurements, as ingest kept them
        assert sorted(conn.execute(select(report_runs)).all()) == runs
    got = stored(engine)
    assert got["cells"] == want["cells"]
    assert got["methods"] == want["methods"]
    assert got["confirmations"] == want["confirmations"]


def test_revocation_recomputes_the_rollups(loaded: tuple[Engine, dict[str, list[str]]]) -> None:
    """Revoking a key leaves the rollups equal to a recount without its measurements."""
    from collectors.store import Store
    from reports.incidents import incidents
    from reports.model import ReportQuery
    from tests.reports.factories import HOURS, T0

    engine, digests = loaded
    store = Store(engine)
    with engine.connect() as conn:
        key_of = dict(conn.execute(select(schema.bundles.c.digest, schema.bundles.c.key_id)).all())
    window = ReportQuery(since=T0, until=T0 + timedelta(hours=HOURS))
    with engine.connect() as conn:
        assert any(i.asn == 64500 and i.confirmed for i in incidents(conn, window))
    assert store.revoke(key_of[digests["a2"][0]], "test")
    want, got = recount(engine), stored(engine)
    assert got == want
    with engine.connect() as conn:
        after = [i for i in incidents(conn, window) if i.asn == 64500]
    assert after and not any(i.confirmed for i in after)  # a1 alone: the block is unconfirmed
    assert ("hour", 64500, "tls") not in {(k[0], k[4], f) for k, f in got["confirmations"]}


def test_a_throttled_run_makes_its_cell_throttled(engine: Engine) -> None:
    """One endpoint throttled out of four: the probe says ``throttled``, and so does the cell.

    Two keys each send two bundles in the hour with three reachable endpoints and one throttled
    transfer; a third key sees the platform work. The keys' runs say ``throttled``, so the cell
    reads ``throttled`` although most of its measurements are reachable.
    """
    from datetime import UTC, datetime

    from collectors.store import Store
    from reports.model import ReportQuery
    from reports.query import reachability

    store = Store(engine)
    t0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for n, key in enumerate(("a" * 64, "b" * 64, "c" * 64)):
        store.enroll(key, bytes(32), network=("PK", 64502), voucher=f"token:{key}")
        for bundle in range(2):
            rows = []
            for i in range(4):
                throttled = n < 2 and i == 3
                rows.append(
                    {
                        "measurement_id": f"{n}-{bundle}-{i}",
                        "platform": "x",
                        "target": f"t{i}",
                        "domain": "x.com",
                        "country": "PK",
                        "asn": 64502,
                        "verdict": "throttled" if throttled else "reachable",
                        "method": "throttle.rate" if throttled else None,
                        "started_at": t0 + timedelta(minutes=10 * bundle + n),
                        "body": "{}",
                    }
                )
            store.add_bundle(f"{n}{bundle}".ljust(64, "0"), key, b"{}", rows)
    query = ReportQuery(since=t0, until=t0 + timedelta(hours=1))
    with engine.connect() as conn:
        (row,) = reachability(conn, query)
    assert row.state == "throttled"
    assert (row.probes, row.throttled, row.reachable) == (3, 2, 1)
    assert row.measurements == 24 and row.methods == {"throttle.rate": 4}
    assert row.dominant_method == "throttle.rate"
