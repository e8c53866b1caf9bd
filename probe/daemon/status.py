"""What the probe is doing, for its volunteer: ``blockprobe status`` and the ``/metrics`` page.

``collect`` reads the state directory only (the daemon need not be running): last run and next
run per platform, the outbox, data used today against the caps, the last contact with the
collector, consent and keys, and whether the daemon has CAP_NET_RAW. ``render_text`` prints it
for a person, ``StatusReport.model_dump_json`` for a script; ``probe.daemon.metrics`` turns it
into Prometheus metrics.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from probe import __version__
from probe.daemon import consent
from probe.daemon.scheduler import PLATFORM_PREFIX, UPLOAD_JOB, next_runs
from probe.daemon.settings import LoadedConfig
from probe.daemon.state import STATE_FILE, Contact, DaemonRecord, RunRecord, State
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.model.base import FrozenModel

if TYPE_CHECKING:  # rich is imported only to render, never in the daemon
    from rich.console import Console


class PlatformStatus(FrozenModel):
    name: str
    last_run: RunRecord | None
    next_run_at: datetime | None


class OutboxStatus(FrozenModel):
    pending: int
    due: int
    dead: int
    dropped: int
    oldest_created_at: datetime | None


class BudgetStatus(FrozenModel):
    day: date
    used_bytes: int
    measured_bytes: int
    upload_bytes: int
    daily_bytes: int
    run_bytes: int
    runs: int
    skipped_runs: int
    metered: bool
    throughput_enabled: bool


class CollectorStatus(FrozenModel):
    url: str | None
    reachable: bool | None  # a live check now; None when not checked
    detail: str | None
    last_contact: Contact | None
    next_upload_at: datetime | None


class KeyStatus(FrozenModel):
    key_id: str
    asn: int | None


class DaemonStatus(FrozenModel):
    running: bool
    record: DaemonRecord | None


class StatusReport(FrozenModel):
    """Everything ``blockprobe status`` shows."""

    version: str
    state_dir: str
    config_source: str
    daemon: DaemonStatus
    consent: consent.ConsentRecord | None
    keys: tuple[KeyStatus, ...]
    platforms: tuple[PlatformStatus, ...]
    outbox: OutboxStatus | None
    budget: BudgetStatus
    collector: CollectorStatus
    cap_net_raw: bool


def cap_net_raw(pid: int | str = "self") -> bool:
    """Whether a process has CAP_NET_RAW in its effective set (cheap: /proc/PID/status)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 13 & 1)  # CAP_NET_RAW is capability 13
    return False


def alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def check_collector(url: str) -> tuple[bool, str]:
    """GET the collector's ``/healthz`` within 3 seconds: (reachable, detail)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=3.0) as client:
            response = await client.get(url.rstrip("/") + "/healthz")
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return response.status_code == 200, f"HTTP {response.status_code}"


def collect(
    state_dir: Path,
    loaded: LoadedConfig,
    *,
    platforms: list[str] | None = None,
    reachable: tuple[bool, str] | None = None,
) -> StatusReport:
    """The status from ``state_dir`` (figures of the running daemon when there is one)."""
    daemon_cfg = loaded.daemon
    record: DaemonRecord | None = None
    last: dict[str, RunRecord] = {}
    contact: Contact | None = None
    if (state_dir / STATE_FILE).is_file():
        with State(state_dir) as state:
            record = state.daemon()
            last = state.last_runs()
            usage = state.usage()
            contact = state.contact()
    else:
        from probe.daemon.state import DayUsage

        usage = DayUsage(day=date.today())
    running = record is not None and record.stopped_at is None and alive(record.pid)
    metered = record.metered if running and record else daemon_cfg.metered
    run_bytes = record.run_bytes if running and record else loaded.probe.budget.run_bytes
    daily = record.daily_bytes if running and record else daemon_cfg.daily_bytes
    collector_url = record.collector_url if running and record else daemon_cfg.collector_url

    jobs = next_runs(state_dir)
    names = list(platforms or [])
    names += [j.removeprefix(PLATFORM_PREFIX) for j in jobs if j.startswith(PLATFORM_PREFIX)]
    names += list(last)
    rows = tuple(
        PlatformStatus(name=n, last_run=last.get(n), next_run_at=jobs.get(PLATFORM_PREFIX + n))
        for n in sorted(set(names))
    )

    outbox: OutboxStatus | None = None
    if (state_dir / OUTBOX_FILE).is_file():
        with Outbox(state_dir / OUTBOX_FILE) as box:
            s = box.stats()
        oldest = datetime.fromtimestamp(s.oldest_created_at, UTC) if s.oldest_created_at else None
        outbox = OutboxStatus(
            pending=s.pending, due=s.due, dead=s.dead, dropped=s.dropped, oldest_created_at=oldest
        )

    keys: list[KeyStatus] = []
    try:
        keys = [KeyStatus(key_id=k.key_id, asn=k.asn) for k in KeyStore(state_dir).all()]
    except (OSError, ValueError):
        pass  # unreadable by this user: shown as no keys

    return StatusReport(
        version=__version__,
        state_dir=str(state_dir),
        config_source=record.config_source if running and record else loaded.probe.source,
        daemon=DaemonStatus(running=running, record=record),
        consent=consent.load(state_dir),
        keys=tuple(keys),
        platforms=rows,
        outbox=outbox,
        budget=BudgetStatus(
            day=usage.day,
            used_bytes=usage.total,
            measured_bytes=usage.measured_bytes,
            upload_bytes=usage.upload_bytes,
            daily_bytes=daily,
            run_bytes=run_bytes,
            runs=usage.runs,
            skipped_runs=usage.skipped,
            metered=metered,
            throughput_enabled=not metered and usage.total < daily,
        ),
        collector=CollectorStatus(
            url=collector_url,
            reachable=reachable[0] if reachable else None,
            detail=reachable[1] if reachable else None,
            last_contact=contact,
            next_upload_at=jobs.get(UPLOAD_JOB),
        ),
        cap_net_raw=record.cap_net_raw if running and record else cap_net_raw(),
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    seconds = (at - now).total_seconds()
    span = abs(seconds)
    text = (
        f"{span:.0f}s"
        if span < 120
        else f"{span / 60:.0f} min"
        if span < 7200
        else f"{span / 3600:.1f} h"
    )
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def render_text(report: StatusReport, console: Console) -> None:
    """The status for a person."""
    from rich.table import Table

    now = datetime.now(UTC)
    d = report.daemon
    if d.running and d.record:
        console.print(
            f"daemon: [green]running[/green] (pid {d.record.pid}, since"
            f" {_when(d.record.started_at, now)}), config {report.config_source}"
        )
    else:
        console.print(f"daemon: [yellow]not running[/yellow], config {report.config_source}")
    console.print(f"state: {report.state_dir}")
    if report.consent:
        c = report.consent
        console.print(f"consent: given {c.accepted_at:%Y-%m-%d} ({c.how}, text v{c.version})")
    else:
        console.print("consent: [red]not given[/red] (see `blockprobe daemon --show-consent`)")
    keys = ", ".join(
        f"{k.key_id[:16]} ({'AS' + str(k.asn) if k.asn is not None else 'unknown network'})"
        for k in report.keys
    )
    console.print(f"keys: {keys or 'none yet'}")
    table = Table(title="platforms", title_justify="left")
    for column in ("platform", "last run", "verdict", "data", "next run"):
        table.add_column(column)
    for p in report.platforms:
        r = p.last_run
        if r is None:
            table.add_row(p.name, "never", "", "", _when(p.next_run_at, now))
            continue
        verdict = r.verdict or r.outcome
        if r.outcome != "measured":
            verdict = f"{r.outcome}: {r.reason or ''}"
        elif r.method:
            verdict += f" ({r.method})"
        table.add_row(
            p.name,
            _when(r.finished_at, now),
            verdict + (", partial" if r.partial else ""),
            _size(r.bytes_used) + ("" if r.throughput else " (no throughput)"),
            _when(p.next_run_at, now),
        )
    console.print(table)
    b = report.budget
    console.print(
        f"data today: {_size(b.used_bytes)} of {_size(b.daily_bytes)} (measuring"
        f" {_size(b.measured_bytes)}, uploads {_size(b.upload_bytes)}); {b.runs} runs,"
        f" {b.skipped_runs} skipped; per run at most {_size(b.run_bytes)};"
        f" metered {'yes' if b.metered else 'no'}; throughput tests"
        f" {'on' if b.throughput_enabled else 'off'}"
    )
    o = report.outbox
    if o is None:
        console.print("outbox: empty (never used)")
    else:
        console.print(
            f"outbox: {o.pending} waiting ({o.due} due), {o.dead} refused, {o.dropped} dropped"
            " (outbox full)"
        )
    col = report.collector
    if col.url is None:
        console.print("collector: none configured (results stay in the outbox)")
    else:
        live = (
            "not checked"
            if col.reachable is None
            else "[green]reachable[/green]"
            if col.reachable
            else f"[red]unreachable[/red] ({col.detail})"
        )
        last = col.last_contact
        contact = (
            f"; last upload {_when(last.at, now)}: {'ok' if last.ok else 'failed'} ({last.detail})"
            if last
            else ""
        )
        console.print(
            f"collector: {col.url} {live}{contact}; next upload {_when(col.next_upload_at, now)}"
        )
    console.print(
        "packet-level tests: "
        + ("on (CAP_NET_RAW)" if report.cap_net_raw else "off (no CAP_NET_RAW; not needed)")
    )
