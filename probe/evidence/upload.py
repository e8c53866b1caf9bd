"""Uploading: drain the outbox to the collector, and enrol a key with it.

``POST {collector}/api/v1/bundles`` with the envelope JSON, gzip-compressed on the wire
(``Content-Encoding: gzip``; a collector that answers 415 gets plain JSON from then on). 201 or 200
(already stored) removes the bundle; a 4xx other than 429 moves it to the dead-letter table with
the collector's reason; 429, 5xx and network errors defer it (Retry-After honoured) and end the
round, since the collector is busy or away. The collector sees the probe's address on the wire; it
must not store it.

The outbox alone says whether a bundle is still to be sent, so a cancelled drain (the daemon
stopping) does not cut an upload between the collector's answer and the outbox's update: the
upload in flight gets ``ANSWER_GRACE`` seconds to finish, then the cancellation goes on. A bundle
whose answer never came stays queued and is sent again; the collector then answers "already
stored".
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import time
from dataclasses import dataclass, field

import httpx

from probe.evidence.enrolment import enrolment_message
from probe.evidence.keys import ProbeKey
from probe.evidence.outbox import Outbox
from probe.evidence.signing import b64encode

BUNDLES_PATH = "/api/v1/bundles"
PROBES_PATH = "/api/v1/probes"
ANSWER_GRACE = 3.0  # seconds a cancelled drain still waits for the upload in flight


class EnrollmentError(RuntimeError):
    """The collector refused to enrol the key."""


@dataclass
class DrainReport:
    """What one drain round did."""

    sent: int = 0
    already: int = 0
    dead: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)
    bytes_sent: int = 0  # request bodies that reached the collector (as sent, compressed)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)[:500]
    return str(body)[:500]


class Uploader:
    """Drains ``outbox`` to the collector at ``collector_url``."""

    def __init__(
        self,
        outbox: Outbox,
        collector_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        batch: int = 50,
    ) -> None:
        self.outbox = outbox
        self.url = collector_url.rstrip("/") + BUNDLES_PATH
        self._client = client
        self.batch = batch
        self.compress = True  # until the collector says it cannot read gzip

    async def drain(self) -> DrainReport:
        """Upload every due bundle until the outbox has none due or the collector pushes back."""
        report = DrainReport()
        client = self._client or httpx.AsyncClient(timeout=30.0)
        try:
            while items := self.outbox.due(self.batch):
                for item in items:
                    if not await self._send_whole(client, item.digest, item.envelope, report):
                        return report
        finally:
            if self._client is None:
                await client.aclose()
        return report

    async def _send_whole(
        self, client: httpx.AsyncClient, digest: str, envelope: bytes, report: DrainReport
    ) -> bool:
        """``_send``, which a cancellation interrupts only after the outbox has the answer."""
        send = asyncio.ensure_future(self._send(client, digest, envelope, report))
        try:
            return await asyncio.shield(send)
        except asyncio.CancelledError:
            _, late = await asyncio.wait([send], timeout=ANSWER_GRACE)
            if late:  # no answer in time: the bundle stays queued
                send.cancel()
                await asyncio.wait([send])
            if not send.cancelled():
                send.exception()  # retrieved: the stop goes on either way
            raise

    async def _send(
        self, client: httpx.AsyncClient, digest: str, envelope: bytes, report: DrainReport
    ) -> bool:
        """Upload one bundle; False when the round should stop."""
        try:
            response = await self._post(client, envelope, report)
            if response.status_code == 415 and self.compress:
                self.compress = False
                response = await self._post(client, envelope, report)
        except httpx.HTTPError as exc:
            self.outbox.defer(digest, f"{type(exc).__name__}: {exc}")
            report.deferred += 1
            report.errors.append(f"{digest[:12]}: {type(exc).__name__}")
            return False
        status = response.status_code
        if status in (200, 201):
            self.outbox.remove(digest)
            if status == 201:
                report.sent += 1
            else:
                report.already += 1
            return True
        reason = f"HTTP {status}: {_reason(response)}"
        if status == 429 or status >= 500:
            retry = retry_after_seconds(response.headers.get("retry-after"))
            self.outbox.defer(digest, reason, retry)
            report.deferred += 1
            report.errors.append(f"{digest[:12]}: {reason}")
            return False
        self.outbox.dead_letter(digest, reason, status)
        report.dead += 1
        report.errors.append(f"{digest[:12]}: {reason}")
        return True

    async def _post(
        self, client: httpx.AsyncClient, envelope: bytes, report: DrainReport
    ) -> httpx.Response:
        headers = {"content-type": "application/json"}
        body = envelope
        if self.compress:
            body = gzip.compress(envelope, compresslevel=6, mtime=0)
            headers["content-encoding"] = "gzip"
        response = await client.post(self.url, content=body, headers=headers)
        report.bytes_sent += len(body)  # an answer came: the body went out
        return response


async def enroll(
    collector_url: str,
    key: ProbeKey,
    token: str | None = None,
    *,
    country: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> str:
    """Enrol ``key`` for its network with the collector; returns the key id it recorded.

    The collector's fresh challenge is signed with the key (proof of possession), binding the key
    to ``country`` and ``key.asn``. A key waiting for an administrator's approval is not enrolled
    yet (``EnrollmentError``; the next attempt succeeds once approved).
    """
    base = collector_url.rstrip("/") + PROBES_PATH
    owned = client is None
    client = client or httpx.AsyncClient(timeout=30.0)
    try:
        issued = await client.post(base + "/challenge")
        if issued.status_code != 200:
            raise EnrollmentError(f"HTTP {issued.status_code}: {_reason(issued)}")
        challenge = str(issued.json().get("challenge", ""))
        message = enrolment_message(challenge, key.public_key_b64, country, key.asn)
        body: dict[str, object] = {
            "public_key": key.public_key_b64,
            "country": country,
            "asn": key.asn,
            "challenge": challenge,
            "signature": b64encode(key.private_key.sign(message)),
        }
        if token is not None:
            body["token"] = token
        response = await client.post(base, json=body)
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach {base}: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:
        raise EnrollmentError(f"unexpected answer from {base}: {exc}") from exc
    finally:
        if owned:
            await client.aclose()
    if response.status_code == 202:
        raise EnrollmentError(
            f"key {key.key_id[:12]} awaits the collector administrator's approval"
        )
    if response.status_code not in (200, 201):
        raise EnrollmentError(f"HTTP {response.status_code}: {_reason(response)}")
    kid = str(response.json().get("key_id", ""))
    if kid != key.key_id:
        raise EnrollmentError(f"collector recorded key id {kid!r}, expected {key.key_id}")
    return kid
