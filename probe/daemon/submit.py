"""After ``blockprobe run --upload``: seal the run's measurements into the outbox and upload them.

The same path as the daemon's runs: one bundle per network (ASN), signed with that network's key
from ``probe.evidence.keys.KeyStore``, put in the durable outbox (``probe.evidence.outbox``), then
any key the collector does not know yet is enrolled (recorded in ``probe.daemon.state``) and the
outbox drained (``probe.evidence.upload.Uploader``). A collector that cannot be reached leaves the
bundles in the outbox, for ``blockprobe upload`` or the daemon to send later. Connection attempts
give up after ``CONNECT_TIMEOUT`` seconds, so a run on a shut-down network does not hang on its
upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from probe.daemon.state import State
from probe.evidence.bundle import build, seal
from probe.evidence.keys import KeyStore
from probe.evidence.outbox import OUTBOX_FILE, Outbox
from probe.evidence.upload import EnrollmentError, Uploader, enroll
from probe.model import Measurement

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Queued:
    """One bundle put in the outbox."""

    asn: int | None
    digest: str
    size: int


@dataclass
class SubmitReport:
    """What ``submit`` did: bundles sealed, keys enrolled, the drain, and what is left queued."""

    sealed: list[Queued] = field(default_factory=list)
    enrolled: int = 0
    sent: int = 0
    already: int = 0
    refused: int = 0
    deferred: int = 0
    pending: int = 0  # bundles left in the outbox after the drain (this run's and older ones)
    errors: list[str] = field(default_factory=list)

    @property
    def stored(self) -> int:
        """Bundles the collector holds after this drain (new or already stored)."""
        return self.sent + self.already

    def summary(self) -> str:
        """One line for stderr: ``upload: 1 bundle sealed (AS64501); 1 stored, 0 queued``."""
        networks = ", ".join(
            dict.fromkeys("AS?" if q.asn is None else f"AS{q.asn}" for q in self.sealed)
        )
        n = len(self.sealed)
        text = f"upload: {n} bundle{'' if n == 1 else 's'} sealed"
        if networks:
            text += f" ({networks})"
        text += f"; {self.stored} stored at the collector, {self.pending} queued in the outbox"
        if self.refused:
            text += f", {self.refused} refused"
        if self.errors:
            text += f" ({self.errors[-1]})"
        return text


def seal_into_outbox(
    outbox: Outbox,
    keys: KeyStore,
    measurements: Sequence[Measurement],
    *,
    country: str | None = None,
) -> list[Queued]:
    """Seal ``measurements`` into ``outbox``: one bundle per network, signed with its key."""
    by_asn: dict[int | None, list[Measurement]] = {}
    for m in measurements:
        by_asn.setdefault(m.vantage.asn, []).append(m)
    queued = []
    for asn, group in by_asn.items():
        key = keys.for_network(asn)
        sealed = seal(build(group, key, country=country), key)
        data = sealed.to_bytes()
        outbox.put(sealed.digest, data)
        queued.append(Queued(asn, sealed.digest, len(data)))
    return queued


def make_client() -> httpx.AsyncClient:
    """The HTTP client for enrolment and upload (short connect timeout)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT))


async def enroll_keys(
    keys: KeyStore,
    state: State,
    collector_url: str,
    token: str | None,
    client: httpx.AsyncClient,
    *,
    country: str | None = None,
) -> tuple[int, list[str]]:
    """Enrol every key the collector has not enrolled yet: (number enrolled now, errors)."""
    enrolled, errors = 0, []
    for key in keys.all():
        if state.is_enrolled(key.key_id, collector_url):
            continue
        try:
            await enroll(collector_url, key, token, country=country, client=client)
        except EnrollmentError as exc:
            errors.append(f"enrolling key {key.key_id[:12]} failed: {exc}")
            state.record_contact(False, f"enrolment failed: {exc}")
            continue
        state.mark_enrolled(key.key_id, collector_url)
        enrolled += 1
    return enrolled, errors


async def submit(
    state_dir: Path,
    measurements: Sequence[Measurement],
    collector_url: str,
    *,
    country: str | None = None,
    enroll_token: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> SubmitReport:
    """Seal ``measurements`` into the outbox of ``state_dir``, enrol keys if needed, and drain."""
    report = SubmitReport()
    owned = client is None
    http = client or make_client()
    try:
        with Outbox(state_dir / OUTBOX_FILE) as outbox, State(state_dir) as state:
            keys = KeyStore(state_dir)
            report.sealed = seal_into_outbox(outbox, keys, measurements, country=country)
            report.enrolled, report.errors = await enroll_keys(
                keys, state, collector_url, enroll_token, http, country=country
            )
            if report.enrolled:
                outbox.requeue_dead(401)  # refused as unknown before the key was enrolled
            drained = await Uploader(outbox, collector_url, client=http).drain()
            report.sent, report.already = drained.sent, drained.already
            report.refused, report.deferred = drained.dead, drained.deferred
            report.errors += drained.errors
            report.pending = outbox.stats().pending
            detail = (
                f"sent {drained.sent}, already stored {drained.already}, refused {drained.dead},"
                f" deferred {drained.deferred}"
            )
            if drained.errors:
                detail += f"; {drained.errors[-1]}"
            state.record_contact(drained.deferred == 0, detail)
    finally:
        if owned:
            await http.aclose()
    return report
