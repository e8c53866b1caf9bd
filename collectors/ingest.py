"""Bundle ingestion: from request bytes to a stored bundle or a refusal with its reason.

Order of checks, cheapest and least trusting first: envelope shape (400), an enrolled signer (401),
revocation, approval and signature (403), already stored (200), bundle schema, manifest, times and
numbers (422), the key's network (403), then one transaction (201) that first spends the key's
rate-limit token (429 when there is none; the bucket is shared by every worker, and sharing the
commit keeps ingest at one commit per bundle). The rate limit comes after the signature so that
forged envelopes cannot spend a genuine probe's budget.

DSSE: signatures' key ids are hints; the envelope is accepted when any signature verifies with an
enrolled key (approved, not revoked) that it names. Failed authentications (401, 403) spend a
bucket shared by the collector's workers; while it is empty they are answered 429.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from pydantic import ValidationError

from collectors.bounds import OutOfBounds, TimeWindow, to_utc
from collectors.limits import SharedRateLimiter
from collectors.metrics import Metrics
from collectors.ratelimit import RateLimiter
from collectors.store import ProbeRecord, RateLimited, Store
from probe.evidence.signing import (
    SignatureError,
    b64decode,
    canonical_json,
    envelope_payload,
    load_public_key,
    verify_envelope,
)
from probe.model.bundle import PAYLOAD_TYPE, Bundle, Envelope


@dataclass(frozen=True)
class Outcome:
    """An HTTP status, a JSON body that says why, and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def refusal(status: int, error: str, detail: str, **headers: str) -> Outcome:
    return Outcome(status, {"error": error, "detail": detail}, headers)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg')}{more}"


def measurement_rows(bundle: Bundle, started: list[datetime] | None = None) -> list[dict[str, Any]]:
    """One row per measurement, as the ``measurements`` table holds it (times in UTC): whole,
    with the canaries and certificates the bundle stores once put back (reports and exports read
    rows alone)."""
    rows = []
    times = started or [to_utc(m.started_at) for m in bundle.measurements]
    for m, started_at in zip(bundle.full_measurements(), times, strict=True):
        rows.append(
            {
                "measurement_id": m.measurement_id,
                "platform": m.platform,
                "target": m.target,
                "domain": m.domain,
                "country": m.vantage.country,
                "asn": m.vantage.asn,
                "verdict": m.verdict.kind,
                "method": m.verdict.method,
                "started_at": started_at,
                "body": m.model_dump_json(),
            }
        )
    return rows


def _rate_limited(key_id: str, wait: float) -> Outcome:
    return refusal(
        429,
        "rate_limited",
        f"too many bundles from {key_id}; retry in {wait:.1f} s",
        **{"retry-after": RateLimiter.retry_after(wait)},
    )


class Limiter(Protocol):
    """Token buckets by name (``collectors.limits``, or ``RateLimiter`` in one process)."""

    def take(self, key: str) -> float | None: ...


AUTH_FAILURES = "auth-failures"  # the bucket failed authentications spend


class Ingestor:
    """Checks and stores bundles; every outcome is counted in ``metrics``."""

    def __init__(
        self,
        store: Store,
        limiter: Limiter,
        metrics: Metrics,
        *,
        window: TimeWindow | None = None,
        failures: Limiter | None = None,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.metrics = metrics
        self.window = window or TimeWindow()
        self.failures = failures

    def submit(self, body: bytes) -> Outcome:
        outcome = self._submit(body)
        if outcome.status in (401, 403) and self.failures is not None:
            wait = self.failures.take(AUTH_FAILURES)
            if wait is not None:
                outcome = refusal(
                    429,
                    "too_many_failures",
                    f"too many failed authentications; retry in {wait:.1f} s",
                    **{"retry-after": RateLimiter.retry_after(wait)},
                )
        if outcome.status >= 400:
            self.metrics.reject(str(outcome.body["error"]))
        return outcome

    def _submit(self, body: bytes) -> Outcome:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            return refusal(400, "malformed", f"not a DSSE envelope: {_first_error(exc)}")
        if envelope.payloadType != PAYLOAD_TYPE:
            return refusal(400, "malformed", f"payloadType must be {PAYLOAD_TYPE!r}")
        try:
            payload = envelope_payload(envelope)
        except SignatureError as exc:
            return refusal(400, "malformed", f"payload: {exc}")

        digest = hashlib.sha256(payload).hexdigest()
        named, index = self.store.lookup([s.keyid for s in envelope.signatures], digest)
        probe_or_refusal = self._signer(envelope, named)
        if isinstance(probe_or_refusal, Outcome):
            return probe_or_refusal
        probe = probe_or_refusal

        if index is not None:
            self.metrics.duplicate()
            return Outcome(200, {"digest": digest, "status": "already_stored", "log_index": index})

        shared = isinstance(self.limiter, SharedRateLimiter)
        if not shared:  # a limiter in memory: spend now; a shared one in the storing transaction
            wait = self.limiter.take(probe.key_id)
            if wait is not None:
                return _rate_limited(probe.key_id, wait)

        try:
            bundle = Bundle.model_validate_json(payload)
        except ValidationError as exc:
            return refusal(422, "schema", f"payload is not a valid bundle: {_first_error(exc)}")
        manifest = bundle.manifest
        try:
            manifest_key = b64decode(manifest.public_key)
        except SignatureError as exc:
            return refusal(422, "schema", f"manifest.public_key: {exc}")
        if manifest.key_id != probe.key_id or manifest_key != probe.public_key:
            return refusal(422, "schema", "manifest names a key other than the signer's")
        try:
            started = self.window.check_bundle(bundle)
        except OutOfBounds as exc:
            return refusal(422, "out_of_bounds", str(exc))
        if (manifest.country, manifest.asn) != probe.network:
            country, asn = probe.network
            return refusal(
                403,
                "wrong_network",
                f"key {probe.key_id} is enrolled for {country or 'ZZ'}/AS{asn},"
                f" the bundle is from {manifest.country or 'ZZ'}/AS{manifest.asn}",
            )
        rows = measurement_rows(bundle, started)
        if any("\x00" in v for row in rows for v in row.values() if isinstance(v, str)):
            return refusal(422, "schema", "a measurement field holds a NUL character")

        stored = canonical_json(envelope.model_dump(mode="json"))
        spend = None
        if isinstance(self.limiter, SharedRateLimiter):
            limiter, kid = self.limiter, probe.key_id
            spend = partial(limiter.take_in, key=kid)
        try:
            created, index = self.store.add_bundle(digest, probe.key_id, stored, rows, spend=spend)
        except RateLimited as limited:
            return _rate_limited(probe.key_id, limited.wait)
        if not created:
            self.metrics.duplicate()
            return Outcome(200, {"digest": digest, "status": "already_stored", "log_index": index})
        self.metrics.accept(len(rows))
        return Outcome(
            201,
            {"digest": digest, "status": "stored", "log_index": index, "measurements": len(rows)},
        )

    def _signer(
        self, envelope: Envelope, enrolled: dict[str, ProbeRecord]
    ) -> ProbeRecord | Outcome:
        """The enrolled key whose signature verifies (DSSE: key ids are hints), or a refusal."""
        named: list[ProbeRecord] = []
        for signature in envelope.signatures:
            probe = enrolled.get(signature.keyid)
            if probe is not None and probe not in named:
                named.append(probe)
        usable = [p for p in named if p.revoked_at is None and p.approved_at is not None]
        for probe in usable:
            try:
                verify_envelope(envelope, load_public_key(probe.public_key), PAYLOAD_TYPE)
            except SignatureError:
                continue
            return probe
        if usable:
            kids = ", ".join(p.key_id for p in usable)
            return refusal(403, "bad_signature", f"no signature verifies for {kids}")
        if any(p.revoked_at is not None for p in named):
            revoked = next(p for p in named if p.revoked_at is not None)
            return refusal(403, "revoked_key", f"key {revoked.key_id} is revoked")
        if named:
            return refusal(
                403, "pending_approval", f"key {named[0].key_id} awaits an administrator's approval"
            )
        return refusal(401, "unknown_key", "no signature is by an enrolled key; enrol first")
