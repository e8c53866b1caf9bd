"""The data budget of one run: bytes transferred so far, and room reserved for transfers to come.

Throughput and upload transfers are the expensive part of a run. Before one starts, the run
reserves its byte budget; when the endpoint is done, the reservation is released and the bytes the
observations actually moved are counted. A transfer that would not fit is skipped (the endpoint is
still measured, without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.model import Observations


def bytes_transferred(observations: Observations) -> int:
    """Bytes the observations moved: HTTP bodies and throughput transfers, both directions."""
    bodies = sum(h.body_length or 0 for h in observations.http)
    transfers = sum(t.bytes for t in observations.throughput)
    return bodies + transfers


class DataBudget:
    """Bytes allowed per run, bytes used, and bytes reserved for transfers in flight."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("a data budget cannot be negative")
        self.limit = limit
        self.used = 0
        self.reserved = 0
        self.skipped = 0  # transfers not started because they would not fit

    @property
    def remaining(self) -> int:
        """Bytes neither used nor reserved (may be negative after an overrun)."""
        return self.limit - self.used - self.reserved

    def reserve(self, size: int) -> bool:
        """Reserve ``size`` bytes for a transfer if they fit; count a skip if they do not."""
        if size <= self.remaining:
            self.reserved += size
            return True
        self.skipped += 1
        return False

    def settle(self, reserved: int, used: int) -> None:
        """Release a reservation of ``reserved`` bytes and count ``used`` bytes as spent."""
        self.reserved -= reserved
        self.used += used

    def spend(self, observations: Observations) -> None:
        """Count what ``observations`` transferred (no reservation involved)."""
        self.used += bytes_transferred(observations)
