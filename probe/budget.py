"""The data budget of one run: bytes transferred so far, and room reserved for transfers to come.

Nothing moves before room for it is reserved: each endpoint (and each canary) reserves its page
budget and a small allowance for DNS and handshakes before it is measured, and its throughput and
upload transfers (with their same-path controls) when it gets them. When the endpoint is done, the
reservation is released and the bytes the observations actually moved are counted. A transfer that
would not fit is skipped (the endpoint is still measured, without it). ``probe.run`` sizes the
transfers so that a run's usual set fits its budget (``fit_settings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.model import Observations


# Reserved per measured endpoint or canary for what is not a body: DNS queries, the server's
# handshake messages (certificates), request and response headers.
HANDSHAKE_ALLOWANCE = 8 * 1024


def bytes_transferred(observations: Observations) -> int:
    """Bytes the observations moved: HTTP bodies, throughput transfers (both directions), the
    servers' TLS handshake messages, and every UDP payload a QUIC step sent or received."""
    bodies = sum(h.body_length or 0 for h in observations.http)
    transfers = sum(t.bytes for t in observations.throughput)
    handshakes = sum(h.received or 0 for h in observations.tls)
    quic = sum(q.sent + q.received for q in observations.quic)
    return bodies + transfers + handshakes + quic


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
