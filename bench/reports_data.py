"""Synthetic collector data for the report benchmark, and a bulk loader that writes it.

``generate`` yields the data: networks in ten countries, two probes per network, one bundle per
probe and hour (its runs a few minutes past the hour, the probe's own minute), nine platforms, a
run's measurements a second apart. What they say: 1 % of runs fail at random (one endpoint's
``outage.platform``), x is blocked (``tls.reset``) on a few networks for days and throttled on
others, one network is down (``outage.local``) for three hours; about 2 % of measurements are
inconclusive.

``bulk_load`` writes the bundles with the tables ingest would leave: probes, bundles,
measurements, the log's nodes and size, ``report_runs`` (``collectors.runs.run_rows``, ingest's own
function), ``report_series`` (``series_rows`` merged as ingest's upsert merges them) and
``report_network_series`` derived from it (``network_rows``, ingest's own function), the v3-v5
rollups (kept in memory as ``collectors.rollup.update_rollups`` keeps them in the database, with
its helpers), then ``report_networks``/``report_failing`` (``rebuild_networks``, the migrations'
own function) and the runs' quiet levels (``collectors.quiet.mark_quiet``, likewise). On
PostgreSQL rows travel by ``COPY``; on SQLite by executemany.
``tests/reports/test_bulk_load.py`` checks that every table equals what ingest leaves.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert

from collectors.db import write_transaction
from collectors.network_series import network_rows, report_network_series
from collectors.quiet import mark_quiet
from collectors.rollup import (
    FAILURES,
    GRAINS,
    LOCAL_OUTAGE,
    SECONDS,
    ballot,
    epoch,
    family,
    rebuild_networks,
)
from collectors.rollup_tables import (
    UNKNOWN_ASN,
    UNKNOWN_COUNTRY,
    report_cells,
    report_confirmations,
    report_methods,
    report_probes,
    report_votes,
)
from collectors.runs import report_runs, run_rows
from collectors.schema import bundles, log_head, log_nodes, measurements, probes
from collectors.series import merge_rows, report_series, series_rows
from collectors.series import table_rows as series_table_rows
from collectors.votes import VERDICTS, vote_of
from translog import merkle

PLATFORMS = ["x", "youtube", "whatsapp", "telegram", "facebook", "instagram", "tiktok", "signal"]
PLATFORMS.append("wikipedia")
COUNTRIES = ["PK", "RU", "IR", "TR", "MM", "EG", "IN", "BR", "DE", "US"]
START = datetime(2024, 1, 1, tzinfo=UTC)
PROBES_PER_NETWORK = 2
RANDOM_FAILURES = 0.01  # of runs
ENVELOPE = b"{}"


@dataclass(frozen=True)
class Shape:
    """How much data: days, networks per country, measurements in all."""

    measurements: int
    days: int = 30
    networks_per_country: int = 6

    def networks(self) -> list[tuple[str, int]]:
        per = self.networks_per_country
        return [(cc, 64500 + i * 10 + j) for i, cc in enumerate(COUNTRIES) for j in range(per)]

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def runs(self) -> int:
        return self.hours * len(self.networks()) * PROBES_PER_NETWORK * len(PLATFORMS)


def key_of(asn: int, probe: int) -> str:
    return f"{asn:08x}{probe:056x}"


def _regime(platform: str, asn: int, hour: int, hours: int, down: tuple[int, int]) -> str:
    """Blocks from 28 % to 56 % of the time on a seventh of networks, throttles from 70 %."""
    if asn == down[0] and down[1] <= hour < down[1] + 3:
        return "down"
    if platform == "x" and asn % 7 == 0 and 0.28 * hours <= hour < 0.56 * hours:
        return "blocked"
    if platform == "x" and asn % 11 == 0 and hour >= 0.7 * hours:
        return "throttled"
    return "fine"


def _measurement(
    rng: random.Random, regime: str, flaky: bool, first: bool
) -> tuple[str, str | None]:
    if regime == "down":
        return "outage", LOCAL_OUTAGE
    if regime == "blocked" and rng.random() < 0.9:
        return "blocked", "tls.reset"
    if regime == "throttled" and rng.random() < 0.8:
        return "throttled", "throttle.rate"
    if flaky and first:
        return "outage", "outage.platform"
    return ("inconclusive", None) if rng.random() < 0.02 else ("reachable", None)


def generate(shape: Shape, seed: int = 7) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(digest, key id, measurement rows) in time order, as ingest receives them."""
    rng = random.Random(seed)
    nets = shape.networks()
    down = (nets[len(nets) // 3][1], shape.hours // 2)
    per_run = shape.measurements / shape.runs
    carry = 0.0
    for hour in range(shape.hours):
        for cc, asn in nets:
            label = f'{{"vantage":{{"network":"Operator {asn}"}}}}'
            for p in range(PROBES_PER_NETWORK):
                key_id = key_of(asn, p)
                minute = (asn * 7 + p * 31) % 55
                began = START + timedelta(hours=hour, minutes=minute)
                digest = f"{hour:08x}{asn:08x}{p:048x}"
                rows: list[dict[str, Any]] = []
                for i, platform in enumerate(PLATFORMS):
                    carry += per_run
                    n, carry = int(carry), carry - int(carry)
                    regime = _regime(platform, asn, hour, shape.hours, down)
                    flaky = rng.random() < RANDOM_FAILURES
                    for j in range(n):
                        verdict, method = _measurement(rng, regime, flaky, j == 0)
                        body = label if j == 0 else "{}"
                        if verdict == "throttled":
                            rate = 120.0 + rng.random() * 40
                            control = 4000.0 + rng.random() * 500
                            rates = {"kbps": round(rate, 1), "control_kbps": round(control, 1)}
                            body = json.dumps({"verdict": {"throughput": rates}})
                        rows.append(
                            {
                                "measurement_id": f"{digest[:16]}-{platform}-{j}",
                                "platform": platform,
                                "target": f"https://{platform}.example/{j}",
                                "domain": f"{platform}.example",
                                "country": cc,
                                "asn": asn,
                                "verdict": verdict,
                                "method": method,
                                "started_at": began + timedelta(seconds=i * 15 + j),
                                "body": body,
                            }
                        )
                if rows:
                    yield digest, key_id, rows


CellKey = tuple[str, int, str, str, int]  # grain, bucket, platform, country, asn


@dataclass
class Rollups:
    """The v3-v5 rollups as ``update_rollups`` leaves them, kept in memory bundle by bundle."""

    vouchers: dict[str, str]
    cells: dict[CellKey, list[Any]] = field(default_factory=dict)  # measurements, last, failure
    tallies: dict[tuple[CellKey, str], list[int]] = field(default_factory=dict)
    methods: Counter[tuple[CellKey, str]] = field(default_factory=Counter)
    presence: set[tuple[CellKey, str, str]] = field(default_factory=set)  # cell, key, family

    def add(self, rows: Sequence[dict[str, Any]], key_id: str, digest: str) -> None:
        added: dict[CellKey, list[int]] = {}  # measurements, five verdicts, failed
        run_methods: dict[CellKey, dict[tuple[str, str], int]] = {}
        for row in rows:
            verdict, method = str(row["verdict"]), row["method"]
            country = row["country"] or UNKNOWN_COUNTRY
            asn = UNKNOWN_ASN if row["asn"] is None else int(row["asn"])
            started = epoch(row["started_at"])
            failed = verdict in FAILURES
            for grain in GRAINS:
                seconds = SECONDS[grain]
                key = (grain, started - started % seconds, str(row["platform"]), country, asn)
                counts = added.setdefault(key, [0] * 7)
                counts[0] += 1
                counts[1 + VERDICTS.index(verdict)] += 1
                if method:
                    self.methods[(key, str(method))] += 1
                    chosen = run_methods.setdefault(key, {})
                    chosen[(verdict, str(method))] = chosen.get((verdict, str(method)), 0) + 1
                self.presence.add((key, key_id, ""))
                if failed:
                    counts[6] += 1
                    self.presence.add((key, key_id, family(verdict, method)))
        for key, counts in added.items():
            tally = ballot([*counts, 0], run_methods.get(key, {}))
            mine = self.tallies.setdefault((key, key_id), [0] * 6)
            for i, n in enumerate(tally):
                mine[i] += n
            cell = self.cells.setdefault(key, [0, digest, None])
            cell[0] += counts[0]
            cell[1] = digest
            if counts[6]:
                cell[2] = digest

    def table_rows(self) -> dict[Table, list[tuple[Any, ...]]]:
        votes: dict[CellKey, list[int]] = {}  # probes, then the five vote counts
        for (key, _key_id), tally in self.tallies.items():
            counts = votes.setdefault(key, [0] * 6)
            counts[0] += 1
            vote = vote_of(tally[:5])
            assert vote is not None
            counts[1 + vote] += 1
        agreeing: dict[tuple[CellKey, str], set[str]] = {}
        for key, key_id, fam in self.presence:
            if key[0] == "hour" and fam:
                agreeing.setdefault((key, fam), set()).add(self.vouchers[key_id])
        confirmed = set()
        for (key, fam), vouchers in agreeing.items():
            if len(vouchers) >= 2:
                for grain in GRAINS:
                    confirmed.add((grain, key[1] - key[1] % SECONDS[grain], *key[2:], fam))
        return {
            report_cells: [(*k, c[0], *votes[k], c[1], c[2]) for k, c in self.cells.items()],
            report_votes: [
                (k[0], k[2], k[3], k[4], k[1], key_id, *t)
                for (k, key_id), t in self.tallies.items()
            ],
            report_methods: [(*k, m, n) for (k, m), n in self.methods.items()],
            report_probes: [
                (k[0], k[2], k[3], k[4], k[1], key_id, fam) for k, key_id, fam in self.presence
            ],
            report_confirmations: sorted(confirmed),
        }


def _columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if not (table is measurements and c.name == "id")]


def write(conn: Connection, table: Table, rows: Iterable[Sequence[Any]]) -> int:
    """Append ``rows`` (tuples in the table's column order, without ``measurements.id``)."""
    names = _columns(table)
    n = 0
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        return n
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(dict(zip(names, row, strict=True)))
        n += 1
        if len(batch) >= 20_000:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
    return n


def _drop_indexes(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """PostgreSQL: drop the tables' secondary indexes; returns their definitions to restore."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = ANY(%(names)s) AND indexname NOT LIKE '%%_pkey'",
        {"names": [t.name for t in tables]},
    ).all()
    for name, _definition in rows:
        conn.exec_driver_sql(f"DROP INDEX {name}")
    return [definition for _name, definition in rows]


@dataclass
class Loaded:
    measurements: int
    bundles: int
    runs: int
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the start


def bulk_load(
    engine: Engine,
    data: Iterable[tuple[str, str, list[dict[str, Any]]]],
    keys: dict[str, tuple[str, int]],
    *,
    flush: int = 200_000,
) -> Loaded:
    """Write ``data`` (as ``generate`` yields it) and every table ingest keeps, in one transaction.

    ``keys``: each key id's network (enrolled with a token of its own, as tests enrol them).
    """
    began = time.perf_counter()
    now = datetime.now(UTC)
    vouchers = {key_id: f"token:{key_id}" for key_id in keys}
    rollups = Rollups(vouchers)
    series: dict[Any, list[Any]] = {}
    nodes: dict[tuple[int, int], bytes] = {}
    pending: dict[Table, list[tuple[Any, ...]]] = {
        bundles: [],
        measurements: [],
        report_runs: [],
        log_nodes: [],
    }
    run_names = _columns(report_runs)
    m_names = _columns(measurements)[1:]  # after bundle_digest
    loaded = Loaded(0, 0, 0)
    with write_transaction(engine) as conn:
        write(
            conn,
            probes,
            [
                (key_id, bytes(32), now, None, None, cc, asn, vouchers[key_id], now)
                for key_id, (cc, asn) in keys.items()
            ],
        )

        def flush_all() -> None:
            for table, rows in pending.items():
                write(conn, table, rows)
                rows.clear()

        indexes = _drop_indexes(conn, [measurements, report_runs])
        for digest, key_id, rows in data:
            index = loaded.bundles
            leaf = merkle.leaf_hash(bytes.fromhex(digest))
            fresh = merkle.new_perfect_nodes(index, leaf, lambda lv, i: nodes[(lv, i)])
            for level, i, h in fresh:
                nodes[(level, i)] = h
                pending[log_nodes].append((level, i, h))
            pending[bundles].append((digest, key_id, now, index, len(rows), ENVELOPE))
            pending[measurements].extend((digest, *(row[name] for name in m_names)) for row in rows)
            runs = run_rows(rows, key_id=key_id, digest=digest)
            pending[report_runs].extend(tuple(run[n] for n in run_names) for run in runs)
            rollups.add(rows, key_id, digest)
            merge_rows(series, series_rows(runs))
            loaded.bundles += 1
            loaded.measurements += len(rows)
            loaded.runs += len(runs)
            if len(pending[measurements]) >= flush:
                flush_all()
        flush_all()
        loaded.phases["rows"] = time.perf_counter() - began
        for definition in indexes:
            conn.exec_driver_sql(definition)
        loaded.phases["indexes"] = time.perf_counter() - began
        conn.execute(log_head.update().values(size=loaded.bundles))
        for table, rows in rollups.table_rows().items():
            write(conn, table, rows)
        series_rows_sorted = series_table_rows(series)
        write(conn, report_series, series_rows_sorted)
        write(conn, report_network_series, network_rows(series_rows_sorted))
        loaded.phases["rollups"] = time.perf_counter() - began
        rebuild_networks(conn)
        loaded.phases["networks"] = time.perf_counter() - began
        mark_quiet(conn)
        loaded.phases["quiet"] = time.perf_counter() - began
    loaded.seconds = time.perf_counter() - began
    return loaded
