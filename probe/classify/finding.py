"""Finding: what one stage rule concluded, and the wording its evidence uses.

A rule returns a ``Finding`` or None (nothing to say). A finding whose verdict is ``reachable``
is a note: the stage passed with a caveat (a flapping try, a partial IP block, a CDN answer) and
the classifier carries on to the next stage; any other verdict ends the classification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.verdict import VerdictKind

_WORDS: dict[Failure, str] = {
    Failure.DNS_NXDOMAIN: "NXDOMAIN",
    Failure.DNS_SERVFAIL: "SERVFAIL",
    Failure.DNS_REFUSED: "REFUSED",
    Failure.DNS_NO_ANSWER: "no address (NODATA)",
    Failure.CONNECTION_REFUSED: "refused",
    Failure.CONNECTION_RESET: "reset by peer",
    # the same error comes from a router's ICMP message or from this machine's own routing
    # table (no route, no network): the words claim neither
    Failure.HOST_UNREACHABLE: "host unreachable",
    Failure.NETWORK_UNREACHABLE: "network unreachable (no route)",
    Failure.TIMEOUT: "timed out",
    Failure.EOF: "closed by the peer (EOF)",
    Failure.SSL_INVALID_HOSTNAME: "certificate for another name",
    Failure.SSL_UNKNOWN_AUTHORITY: "certificate from an unknown authority",
    Failure.SSL_INVALID_CERTIFICATE: "invalid certificate",
    Failure.SSL_FAILED_HANDSHAKE: "answered with a TLS alert",
    Failure.QUIC_CLOSED: "closed by a CONNECTION_CLOSE",
    Failure.QUIC_STATELESS_RESET: "ended by a stateless reset",
    Failure.QUIC_INCOMPATIBLE_VERSION: "answered by a Version Negotiation packet",
    Failure.UNKNOWN: "failed (unknown error)",
}


# A measurement made elsewhere with one try per step (OONI's) concludes only from an active
# answer that the control vantage does not see, and says so with a lower confidence.
ONE_TRY = 0.7
ONE_TRY_NOTE = "seen on one try (the measurement did not retry the step)"


@dataclass(frozen=True)
class Finding:
    """One rule's conclusion: verdict, method (``stage.outcome``), confidence and evidence."""

    verdict: VerdictKind
    method: Method | None
    confidence: float
    evidence: tuple[str, ...]

    def after(self, lines: Sequence[str]) -> Finding:
        """This finding with ``lines`` put before its own evidence."""
        return replace(self, evidence=(*lines, *self.evidence))


def describe(failure: Failure) -> str:
    """A few words for ``failure`` in evidence strings ("reset by peer", "timed out")."""
    return _WORDS[failure]


def elapsed(t0: float, t: float) -> str:
    """The duration between ``t0`` and ``t`` as whole milliseconds ("3 ms")."""
    return f"{max(0.0, t - t0) * 1000:.0f} ms"


def tries_phrase(failed: int, count: int) -> str:
    """How many tries failed, for evidence ("on 2 of 2 tries")."""
    return f"on {failed} of {count} {'try' if count == 1 else 'tries'}"
