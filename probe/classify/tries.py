"""Tries: settling the repeated attempts of one step into one outcome.

Flows retry a failed step on a fresh connection and keep every try. A failure counts only when
every try failed and there were at least two (``failed``); one failed try that was never retried
is ``once`` and never enough to call a block; a failure next to a success is ``flaky`` and the
step is taken to work. An active answer (a reset, an ICMP unreachable, a close, an alert)
outranks timeouts as the tries' failure: a censor's ICMP is rate-limited and residual blocking
turns resets into drops, so timeouts around an active answer come from the same interference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from probe.model.failures import Failure

Outcome = Literal["ok", "failed", "once", "flaky"]
ACTIVE_FAILURES = frozenset(
    {
        Failure.CONNECTION_RESET,
        Failure.CONNECTION_REFUSED,
        Failure.HOST_UNREACHABLE,
        Failure.NETWORK_UNREACHABLE,
        Failure.EOF,
        Failure.SSL_FAILED_HANDSHAKE,
        Failure.QUIC_CLOSED,
        Failure.QUIC_STATELESS_RESET,
        Failure.QUIC_INCOMPATIBLE_VERSION,
    }
)


@dataclass(frozen=True)
class Tries:
    """The settled outcome of one step's tries, with the failure most of them saw."""

    outcome: Outcome
    failure: Failure | None
    failed: int
    count: int

    @property
    def works(self) -> bool:
        """True when at least one try succeeded."""
        return self.outcome in ("ok", "flaky")


def settle(failures: Sequence[Failure | None]) -> Tries:
    """Settle the tries' failures (None for a successful try); there must be at least one."""
    if not failures:
        raise ValueError("no tries to settle")
    seen = [f for f in failures if f is not None]
    active = [f for f in seen if f in ACTIVE_FAILURES]
    common = Counter(active or seen).most_common(1)[0][0] if seen else None
    outcome: Outcome
    if not seen:
        outcome = "ok"
    elif len(seen) < len(failures):
        outcome = "flaky"
    elif len(seen) == 1:
        outcome = "once"
    else:
        outcome = "failed"
    return Tries(outcome, common, len(seen), len(failures))
