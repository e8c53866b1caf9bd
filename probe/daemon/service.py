"""The probe daemon: scheduled runs into signed bundles in the outbox, uploads, signals, budget.

``Daemon.serve`` starts the scheduler (``probe.daemon.scheduler``) and waits for a stop. Each
platform run checks the day's data counter, runs ``run_check`` for that platform with the run's cap
(no throughput or upload transfers in metered mode), seals the measurements into a bundle with the
key of the vantage's network, puts it in the outbox and records the run for ``status``; then the
outbox is drained. SIGTERM/SIGINT cancel the run in flight (nothing half-written: the outbox and
state commit each write whole) and return within seconds; a run cut off so (or by a crash) is
tried again within a minute or two of the next start, not a whole interval later. SIGHUP reloads
the configuration file and applies every key but ``state_dir`` (logged as needing a restart),
keeping the running configuration if the new one is refused. An optional ``/metrics`` page is
served on 127.0.0.1 only, by prometheus_client (``probe.daemon.metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from probe import __version__
from probe.budget import DataBudget
from probe.config import ProbeConfig
from probe.configfile import ConfigError
from probe.daemon import scheduler, status
from probe.daemon.settings import LoadedConfig
from probe.daemon.state import DaemonRecord, EndpointVerdict, RunRecord, State
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.platforms import Platform, UnknownPlatformError

if TYPE_CHECKING:  # what a run or an upload needs is imported when one comes (idle RSS)
    import httpx

    from probe.daemon.metrics import MetricsServer
    from probe.evidence.upload import DrainReport
    from probe.model import Measurement, RunDocument

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
JOB_GRACE = 5.0  # seconds a stop waits for the cancelled jobs to record how they ended


RESTART_KEYS = frozenset({"daemon.state_dir"})  # what a reload cannot change under a running daemon


def changed_keys(old: LoadedConfig, new: LoadedConfig) -> list[str]:
    """The keys (dotted, as written in the file) whose values differ between two configurations."""
    out = _diff(old.probe.model_dump(exclude={"daemon"}), new.probe.model_dump(exclude={"daemon"}))
    out += _diff(old.daemon.model_dump(), new.daemon.model_dump(), "daemon.")
    return out


def _diff(old: dict[str, object], new: dict[str, object], prefix: str = "") -> list[str]:
    out = []
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "schedule":
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(prefix + key)
    return sorted(out)


class RunCheck(Protocol):
    """``probe.run.run_check`` as the daemon calls it."""

    def __call__(
        self, config: ProbeConfig, platforms: Sequence[Platform], *, budget: DataBudget
    ) -> Awaitable[tuple[RunDocument, list[Measurement]]]: ...


def _run_in_child(state_dir: Path, country: str | None) -> RunCheck:
    """Each run in a child process of its own (``probe.daemon.run_child``), which also seals the
    bundles with the keys in ``state_dir``: the daemon's idle memory stays low."""
    from probe.daemon.run_child import run_in_child

    async def call(
        config: ProbeConfig, platforms: Sequence[Platform], *, budget: DataBudget
    ) -> tuple[RunDocument, list[Measurement]]:
        return await run_in_child(
            config, platforms, budget=budget, state_dir=state_dir, country=country
        )

    return call


def release_memory() -> None:
    """Return freed heap to the system between runs (glibc keeps it otherwise): idle RSS."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def without_transfers(config: ProbeConfig) -> ProbeConfig:
    """``config`` with no throughput or upload transfers (metered mode)."""
    budget = config.budget.model_copy(update={"throughput_bytes": 0, "upload_bytes": 0})
    updated = config.model_copy(update={"budget": budget})
    updated._source = config.source
    return updated


class Daemon:
    """One probe daemon over one state directory."""

    def __init__(
        self,
        loaded: LoadedConfig,
        state_dir: Path,
        *,
        reload: Callable[[], LoadedConfig] | None = None,
        relog: Callable[[LoadedConfig], None] | None = None,
        run: RunCheck | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.loaded = loaded
        self.state_dir = state_dir
        self._reload = reload
        self._relog = relog
        self._run = run or _run_in_child(state_dir, loaded.probe.vantage.country)
        self._client = client
        self.platforms = self._platforms(loaded)
        self.state = State(state_dir)
        self.outbox = Outbox(state_dir / OUTBOX_FILE)
        self.keys = KeyStore(state_dir)
        self.scheduler = scheduler.make_scheduler(state_dir, loaded.daemon)
        self.started_at = datetime.now(UTC)
        self._stop = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._metrics: MetricsServer | None = None
        self._metrics_restart: asyncio.Task[None] | None = None

    @staticmethod
    def _platforms(loaded: LoadedConfig) -> dict[str, Platform]:
        return {p.name: p for p in loaded.probe.chosen_platforms()}

    # --- life cycle ---------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until ``stop`` (or SIGTERM/SIGINT); SIGHUP reloads the configuration."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop, sig.name)
                installed.append(sig)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            installed.append(signal.SIGHUP)
        scheduler.bind(self)
        try:
            self.scheduler.start(paused=True)
            report = scheduler.sync(self.scheduler, list(self.platforms), self.loaded.daemon)
            logger.info(
                "schedule: kept %s, added %s, replaced %s, removed %s",
                list(report.kept),
                list(report.added),
                list(report.replaced),
                list(report.removed),
            )
            retried = scheduler.retry_soon(self.scheduler, self.state.interrupted())
            for name, when in sorted(retried.items()):
                logger.info(
                    "%s: the last run was interrupted; trying again at %s",
                    name,
                    when.isoformat(timespec="seconds"),
                )
            self.scheduler.resume()
            await self._start_metrics()
            self._record_daemon()
            logger.info(
                "blockprobe %s daemon started: %d platforms, state %s, config %s",
                __version__,
                len(self.platforms),
                self.state_dir,
                self.loaded.probe.source,
            )
            await self._stop.wait()
        finally:
            await self._shutdown()
            for sig in installed:
                loop.remove_signal_handler(sig)

    def stop(self, why: str = "stop requested") -> None:
        """Ask ``serve`` to return (safe from a signal handler)."""
        if not self._stop.is_set():
            logger.info("stopping (%s)", why)
        self._stop.set()

    async def _shutdown(self) -> None:
        t0 = time.monotonic()
        # the scheduler owns the job tasks: it cancels the run in flight and waits for it to be
        # recorded (an upload in flight first learns the collector's answer), so nothing touches
        # the outbox or the state once they are closed below
        await self.scheduler.stop(grace=JOB_GRACE)
        if self._metrics_restart is not None:
            await asyncio.wait([self._metrics_restart], timeout=2.0)
        await self._stop_metrics()
        record = self.state.daemon()
        if record is not None and record.pid == os.getpid():
            self.state.record_daemon(record.model_copy(update={"stopped_at": datetime.now(UTC)}))
        scheduler.bind(None)
        self.outbox.close()
        self.state.close()
        logger.info("stopped in %.2f s", time.monotonic() - t0)

    def _record_daemon(self, reloaded: bool = False) -> None:
        d = self.loaded.daemon
        self.state.record_daemon(
            DaemonRecord(
                pid=os.getpid(),
                started_at=self.started_at,
                version=__version__,
                config_source=self.loaded.probe.source,
                cap_net_raw=status.cap_net_raw(),
                metered=d.metered,
                run_bytes=self.loaded.probe.budget.run_bytes,
                daily_bytes=d.daily_bytes,
                collector_url=d.collector_url,
                schedules={
                    n: scheduler.describe(d.when(n), d.jitter) for n in sorted(self.platforms)
                },
                reloaded_at=datetime.now(UTC) if reloaded else None,
            )
        )

    def reload(self) -> bool:
        """Re-read the configuration and apply it; on a refused file keep the running one.

        Every key takes effect now (the schedule, the collector, budgets, logging, the metrics
        port, the probe's own keys from the next run on) except ``state_dir``, which is logged
        as needing a restart.
        """
        if self._reload is None:
            logger.warning("SIGHUP: no configuration file to reload")
            return False
        try:
            loaded = self._reload()
            platforms = self._platforms(loaded)
        except (ConfigError, UnknownPlatformError) as exc:
            logger.error(
                "configuration reload refused, keeping the running configuration: %s",
                str(exc).replace("\n", "; "),
            )
            return False
        old = self.loaded
        changed = changed_keys(old, loaded)
        restart = [k for k in changed if k in RESTART_KEYS]
        if restart:
            loaded = dataclasses.replace(
                loaded,
                daemon=loaded.daemon.model_copy(update={"state_dir": old.daemon.state_dir}),
            )
        self.loaded, self.platforms = loaded, platforms
        report = scheduler.sync(self.scheduler, list(platforms), loaded.daemon)
        if self._relog is not None:
            self._relog(loaded)
        else:
            logging.getLogger().setLevel(loaded.daemon.log_level.upper())
        if "daemon.metrics_port" in changed:
            self._metrics_restart = asyncio.get_running_loop().create_task(self._restart_metrics())
        self._record_daemon(reloaded=True)
        applied = [k for k in changed if k not in restart]
        logger.info(
            "configuration reloaded from %s: applied %s; schedule: added %s, replaced %s,"
            " removed %s",
            loaded.probe.source,
            ", ".join(applied) or "no change",
            list(report.added),
            list(report.replaced),
            list(report.removed),
        )
        if restart:
            logger.warning(
                "%s changed in the configuration: needs a restart (still using %s)",
                ", ".join(restart),
                self.state_dir,
            )
        return True

    # --- jobs ---------------------------------------------------------------------------------

    async def run_platform(self, name: str) -> RunRecord:
        """One scheduled run of ``name``: budget check, measure, seal, queue, record, upload."""
        self.state.mark_started(name)
        record = await self._run_platform(name)
        if record.outcome == "measured" and self.loaded.daemon.collector_url:
            await self.drain()
        release_memory()
        return record

    async def _run_platform(self, name: str) -> RunRecord:
        started = datetime.now(UTC)
        platform = self.platforms.get(name)
        if platform is None:
            return self._finish(name, started, "failed", reason="platform no longer configured")
        probe_config, d = self.loaded.probe, self.loaded.daemon
        remaining = d.daily_bytes - self.state.usage().total
        if remaining <= 0:
            logger.info(
                "%s: skipped, today's data budget (%d bytes) is used up", name, d.daily_bytes
            )
            self.state.add_usage(skipped=1)
            return self._finish(
                name,
                started,
                "skipped",
                reason=f"daily data budget of {d.daily_bytes} bytes used up",
            )
        cap = min(probe_config.budget.run_bytes, remaining)
        if d.metered:
            probe_config = without_transfers(probe_config)
        budget = DataBudget(cap)
        try:
            document, measurements = await self._run(probe_config, [platform], budget=budget)
        except asyncio.CancelledError:
            logger.warning("%s: run abandoned (stopping)", name)
            self.state.add_usage(measured=budget.used)
            self._finish(
                name, started, "abandoned", reason="the daemon stopped mid-run", budget=budget
            )
            raise
        except Exception as exc:  # a failing run must not stop the daemon
            logger.exception("%s: run failed", name)
            self.state.add_usage(measured=budget.used, runs=1)
            return self._finish(
                name, started, "failed", reason=f"{type(exc).__name__}: {exc}", budget=budget
            )
        digest, size = self._queue(measurements)
        self.state.add_usage(measured=budget.used, runs=1)  # uploads count when they happen
        summary = next((r for r in document.results if r.target is None), None)
        record = self._finish(
            name,
            started,
            "measured",
            budget=budget,
            verdict=summary.verdict if summary else None,
            method=summary.method if summary else None,
            partial=bool(summary and summary.partial),
            endpoints=tuple(
                EndpointVerdict(target=r.target, verdict=r.verdict, method=r.method)
                for r in document.results
                if r.target is not None
            ),
            throughput=not d.metered,
            digest=digest,
            bundle_bytes=size,
        )
        logger.info(
            "%s: %s%s, %d endpoints, %d bytes (cap %d), bundle %s",
            name,
            record.verdict,
            f" ({record.method})" if record.method else "",
            len(record.endpoints),
            budget.used,
            cap,
            (digest or "-")[:12],
        )
        return record

    def _queue(self, measurements: list[Measurement]) -> tuple[str | None, int]:
        """Seal the measurements (one bundle per network) into the outbox: (digest, bytes).

        A run made in a child process comes with its bundles already sealed: they are only put.
        """
        from probe.daemon.run_child import SealedMeasurements

        if isinstance(measurements, SealedMeasurements):
            for digest, envelope in measurements.bundles:
                self.outbox.put(digest, envelope)
            last = measurements.bundles[-1][0] if measurements.bundles else None
            return last, sum(len(envelope) for _, envelope in measurements.bundles)
        from probe.daemon.submit import seal_into_outbox

        queued = seal_into_outbox(
            self.outbox, self.keys, measurements, country=self.loaded.probe.vantage.country
        )
        return (queued[-1].digest if queued else None), sum(q.size for q in queued)

    def _finish(
        self,
        name: str,
        started: datetime,
        outcome: str,
        *,
        reason: str | None = None,
        budget: DataBudget | None = None,
        verdict: str | None = None,
        method: str | None = None,
        partial: bool = False,
        endpoints: tuple[EndpointVerdict, ...] = (),
        throughput: bool = True,
        digest: str | None = None,
        bundle_bytes: int = 0,
    ) -> RunRecord:
        record = RunRecord.model_validate(
            {
                "platform": name,
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "outcome": outcome,
                "reason": reason,
                "verdict": verdict,
                "method": method,
                "partial": partial,
                "endpoints": endpoints,
                "bytes_used": budget.used if budget else 0,
                "budget_bytes": budget.limit if budget else 0,
                "throughput": throughput,
                "transfers_skipped": budget.skipped if budget else 0,
                "bundle_digest": digest,
                "bundle_bytes": bundle_bytes,
            }
        )
        self.state.record_run(record)
        return record

    async def drain(self) -> DrainReport | None:
        """Enrol new keys, then upload every due bundle; records the contact for ``status``."""
        url = self.loaded.daemon.collector_url
        if url is None:
            return None
        from probe.evidence.upload import DrainReport, Uploader

        async with self._drain_lock:
            await self._enroll_keys(url)
            if not self.outbox.due(1):
                return DrainReport()
            report = await Uploader(self.outbox, url, client=self._client).drain()
        self.state.add_usage(upload=report.bytes_sent)
        failed = report.deferred > 0
        detail = (
            f"sent {report.sent}, already stored {report.already}, refused {report.dead},"
            f" deferred {report.deferred}"
        )
        if report.errors:
            detail += f"; {report.errors[-1]}"
        self.state.record_contact(not failed, detail)
        (logger.warning if failed or report.dead else logger.info)("upload: %s", detail)
        return report

    async def _enroll_keys(self, url: str) -> None:
        from probe.evidence.upload import EnrollmentError, enroll

        token = self.loaded.daemon.enroll_token
        newly = False
        for key in self.keys.all():
            if self.state.is_enrolled(key.key_id, url):
                continue
            try:
                await enroll(
                    url,
                    key,
                    token.get_secret_value() if token else None,
                    country=self.loaded.probe.vantage.country,
                    client=self._client,
                )
            except EnrollmentError as exc:
                logger.warning("enrolling key %s failed: %s", key.key_id[:16], exc)
                self.state.record_contact(False, f"enrolment failed: {exc}")
                continue
            self.state.mark_enrolled(key.key_id, url)
            logger.info("key %s enrolled with %s", key.key_id[:16], url)
            newly = True
        if newly:
            self.outbox.requeue_dead(401)  # refused as unknown before the key was enrolled

    # --- /metrics -----------------------------------------------------------------------------

    async def _restart_metrics(self) -> None:
        await self._stop_metrics()
        try:
            await self._start_metrics()
        except OSError as exc:
            logger.error("metrics: cannot listen on the new port: %s", exc)

    async def _start_metrics(self) -> None:
        port = self.loaded.daemon.metrics_port
        if port is None:
            return
        from probe.daemon.metrics import MetricsServer  # prometheus_client only when asked for

        self._metrics = await asyncio.to_thread(MetricsServer, port, self._status)
        logger.info("metrics on http://127.0.0.1:%d/metrics", port)

    async def _stop_metrics(self) -> None:
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.close)
            self._metrics = None

    def _status(self) -> status.StatusReport:
        """The status now (called in the metrics server's thread at each scrape)."""
        return status.collect(self.state_dir, self.loaded, platforms=list(self.platforms))
