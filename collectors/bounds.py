"""Bounds on what a bundle may say: times inside a window around the collector's clock.

A measurement's ``started_at`` and a manifest's ``created_at`` must lie between ``max_age`` before
the collector's clock and ``max_skew`` after it (defaults: 90 days, so that a probe's outbox can
wait out a long shutdown, and 15 minutes of clock skew). Times are stored in UTC: an offset such
as ``+14:00`` is converted, never dropped. Numbers are bounded by the bundle's model (ASN at most
2^32-1, no NaN or Infinity).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from probe.model.bundle import Bundle

MAX_AGE = timedelta(days=90)
MAX_SKEW = timedelta(minutes=15)


class OutOfBounds(ValueError):
    """A bundle that says something outside the collector's bounds."""


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC); ``OutOfBounds`` if it cannot be."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise OutOfBounds(f"{moment.isoformat()} is outside the representable range") from None


@dataclass(frozen=True)
class TimeWindow:
    """The accepted times: [now - max_age, now + max_skew] by ``clock`` (epoch seconds)."""

    max_age: timedelta = MAX_AGE
    max_skew: timedelta = MAX_SKEW
    clock: Callable[[], float] = field(default=time.time)

    def check(self, what: str, moment: datetime) -> datetime:
        """``moment`` in UTC if it is inside the window; else ``OutOfBounds`` saying so."""
        utc = to_utc(moment)
        now = datetime.fromtimestamp(self.clock(), UTC)
        if utc < now - self.max_age:
            days = self.max_age.days
            raise OutOfBounds(f"{what} {utc.isoformat()} is more than {days} days old")
        if utc > now + self.max_skew:
            minutes = int(self.max_skew.total_seconds() // 60)
            raise OutOfBounds(
                f"{what} {utc.isoformat()} is more than {minutes} min ahead of the collector"
            )
        return utc

    def check_bundle(self, bundle: Bundle) -> list[datetime]:
        """Check every time of ``bundle``; the measurements' start times in UTC, in order."""
        self.check("manifest.created_at", bundle.manifest.created_at)
        return [
            self.check(f"measurements[{i}].started_at", m.started_at)
            for i, m in enumerate(bundle.measurements)
        ]
