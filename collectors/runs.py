"""Runs: what one probe said about one platform in one bundle, kept at ingest for incidents.

A *run* is a bundle's measurements of one platform. Its verdict is the worst endpoint verdict
(blocked, throttled, outage, then reachable), as the probe summarises a platform, except that an
inconclusive endpoint does not outweigh the others' answers (a run is inconclusive only when every
endpoint is); its method is the most frequent method of that verdict. A run
whose verdict is ``outage.local`` saw the vantage's own network down (canaries and controls
failed too): it speaks about the network, not the platform.

Times are the measurements' own (epoch seconds, fractions kept): ``started`` the run's first
measurement, ``first_failure``/``last_failure`` its first and last failing one. ``kbps`` and
``control_kbps`` are the slowest transfer measured in the run and the same-path control's rate
for it, for the throttle chart. ``label`` is the probe's ``vantage.network`` label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)

from probe.model.verdict import SEVERITY

metadata = MetaData()

report_runs = Table(
    "report_runs",
    metadata,
    Column("bundle_digest", String(64), primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("country", String(2), nullable=False),
    Column("asn", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("started", Float, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("method", Text),
    Column("failing", Integer, nullable=False),  # 1 when the verdict is a failure
    Column("network_down", Integer, nullable=False),  # 1 when the method is outage.local
    Column("measurements", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("first_failure", Float),
    Column("last_failure", Float),
    Column("kbps", Float),
    Column("control_kbps", Float),
    Column("label", Text),
    # v9: the run's quiet level (collectors.quiet): a lone failure that incidents need not read
    Column("quiet", Integer, nullable=False, server_default="0"),
)

FAILING = ("blocked", "throttled", "outage")
LOCAL_OUTAGE = "outage.local"
UNKNOWN_COUNTRY = "ZZ"


def create_runs_table(conn: Connection) -> None:
    """Create ``report_runs`` and its indexes: by series, network, failing runs, time, verdict."""
    metadata.create_all(conn)
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_series"
        " ON report_runs (country, asn, platform, started)"
    )
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_failing ON report_runs (started) WHERE failing = 1"
    )
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_network ON report_runs (country, asn, started)"
    )
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS report_runs_time ON report_runs (started)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_verdict"
        " ON report_runs (country, asn, platform, verdict, started)"
    )


def index_failing_runs(conn: Connection) -> None:
    """v8: indexes that incidents read without the table: the failing runs' (covering the series
    they name), the network-down runs', and the reachable neighbours' (verdict and network_down
    before the time)."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS report_runs_failing")
    conn.exec_driver_sql("DROP INDEX IF EXISTS report_runs_verdict")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_good"
        " ON report_runs (country, asn, platform, verdict, network_down, started)"
    )
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_failing_series"
        " ON report_runs (started, network_down, platform, country, asn) WHERE failing = 1"
    )
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_down"
        " ON report_runs (started, country, asn) WHERE network_down = 1"
    )


def index_quiet_runs(conn: Connection) -> None:
    """v9: ``quiet`` (added if missing) in the failing runs' index, which incidents read."""
    present = {c["name"] for c in inspect(conn).get_columns("report_runs")}
    if "quiet" not in present:
        conn.exec_driver_sql("ALTER TABLE report_runs ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql("DROP INDEX IF EXISTS report_runs_failing_series")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS report_runs_failing_quiet"
        " ON report_runs (started, network_down, quiet, platform, country, asn) WHERE failing = 1"
    )


def epoch_seconds(moment: datetime) -> float:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp()


@dataclass
class _Run:
    started: float
    label: str | None = None
    measurements: int = 0
    verdicts: dict[str, int] | None = None
    methods: dict[tuple[str, str], int] | None = None
    first_failure: float | None = None
    last_failure: float | None = None
    kbps: float | None = None
    control_kbps: float | None = None


def run_verdict(verdicts: Mapping[str, int]) -> str:
    """The worst endpoint verdict, inconclusive only when nothing else was seen."""
    for kind in SEVERITY:
        if kind != "inconclusive" and verdicts.get(kind):
            return kind
    return "inconclusive"


def _throughput(body: str) -> tuple[str | None, float | None, float | None]:
    """The network label and the measured/control rate of one measurement's JSON body."""
    data = json.loads(body)
    label = (data.get("vantage") or {}).get("network")
    verdict = data.get("verdict") or {}
    for name in ("throughput", "throughput_up"):
        summary = verdict.get(name)
        if isinstance(summary, dict) and summary.get("kbps") is not None:
            return label, float(summary["kbps"]), summary.get("control_kbps")
    return label, None, None


def run_rows(
    rows: Iterable[Mapping[str, Any]], *, key_id: str, digest: str
) -> list[dict[str, Any]]:
    """The ``report_runs`` rows of one bundle's measurement rows (``measurements`` rows)."""
    runs: dict[tuple[str, str, int], _Run] = {}
    for row in rows:
        country = row["country"] or UNKNOWN_COUNTRY
        asn = 0 if row["asn"] is None else int(row["asn"])
        key = (str(row["platform"]), country, asn)
        moment = epoch_seconds(row["started_at"])
        run = runs.get(key)
        if run is None:
            run = runs[key] = _Run(moment, verdicts={}, methods={})
        assert run.verdicts is not None and run.methods is not None
        run.started = min(run.started, moment)
        run.measurements += 1
        verdict = str(row["verdict"])
        run.verdicts[verdict] = run.verdicts.get(verdict, 0) + 1
        if row["method"]:
            mkey = (verdict, str(row["method"]))
            run.methods[mkey] = run.methods.get(mkey, 0) + 1
        if verdict in FAILING:
            run.first_failure = min(run.first_failure or moment, moment)
            run.last_failure = max(run.last_failure or moment, moment)
        body = str(row.get("body") or "")
        if run.label is None or '"throughput":{' in body or '"throughput_up":{' in body:
            label, kbps, control = _throughput(body) if body else (None, None, None)
            run.label = run.label or label
            if kbps is not None and (run.kbps is None or kbps < run.kbps):
                run.kbps, run.control_kbps = kbps, control
    out = []
    for (platform, country, asn), run in sorted(runs.items()):
        assert run.verdicts is not None and run.methods is not None
        verdict = run_verdict(run.verdicts)
        candidates = [(n, m) for (v, m), n in run.methods.items() if v == verdict]
        method = min(candidates, key=lambda nm: (-nm[0], nm[1]))[1] if candidates else None
        failures = sum(run.verdicts.get(k, 0) for k in FAILING)
        out.append(
            {
                "bundle_digest": digest,
                "platform": platform,
                "country": country,
                "asn": asn,
                "key_id": key_id,
                "started": run.started,
                "verdict": verdict,
                "method": method,
                "failing": int(verdict in FAILING),
                "network_down": int(method == LOCAL_OUTAGE),
                "measurements": run.measurements,
                "failures": failures,
                "first_failure": run.first_failure,
                "last_failure": run.last_failure,
                "kbps": run.kbps,
                "control_kbps": run.control_kbps,
                "label": run.label,
                "quiet": 0,  # collectors.quiet.update_quiet marks it once stored
            }
        )
    return out


def record_runs(
    conn: Connection, rows: Sequence[Mapping[str, Any]], *, key_id: str, digest: str
) -> list[dict[str, Any]]:
    """Add one bundle's runs (inside the ingest transaction); returns them."""
    found = run_rows(rows, key_id=key_id, digest=digest)
    if found:
        conn.execute(insert(report_runs), found)
    return found


def forget_runs(conn: Connection, key_id: str) -> int:
    """Remove a (just revoked) key's runs from the reports; returns how many."""
    return int(conn.execute(delete(report_runs).where(report_runs.c.key_id == key_id)).rowcount)


def backfill_runs(conn: Connection, chunk: int = 5000) -> int:
    """Rebuild ``report_runs`` from the measurements of keys not revoked (the migration)."""
    from collectors.schema import bundles, measurements, probes

    conn.execute(delete(report_runs))
    m = measurements.c
    query = (
        select(m.bundle_digest, bundles.c.key_id, m.platform, m.country, m.asn, m.verdict)
        .add_columns(m.method, m.started_at, m.body)
        .join(bundles, bundles.c.digest == m.bundle_digest)
        .join(probes, probes.c.key_id == bundles.c.key_id)
        .where(probes.c.revoked_at.is_(None))
        .order_by(m.bundle_digest)
    )
    total = 0
    current: tuple[str, str] | None = None
    pending: list[dict[str, Any]] = []
    for row in conn.execute(query).yield_per(chunk):
        if current is not None and row.bundle_digest != current[0]:
            record_runs(conn, pending, key_id=current[1], digest=current[0])
            pending = []
        current = (row.bundle_digest, row.key_id)
        pending.append(row._asdict())
        total += 1
    if current is not None:
        record_runs(conn, pending, key_id=current[1], digest=current[0])
    return total
