"""One vote per key per cell: a key's vote is the majority verdict of its own runs there.

A key's tally in a cell counts its runs (one bundle's measurements of the platform in that cell,
judged as the probe judges a platform: the worst endpoint verdict, ``collectors.runs``). The rule is
the cell rule applied to one key (docs/reports.md): failing when more than half of the key's runs
fail (the most frequent failing verdict; ties go to the more severe), reachable when at least half
are reachable, otherwise inconclusive. A key that uploads ten bundles into a cell still casts one
vote; a key whose runs change its majority moves its vote."""

from __future__ import annotations

from collections.abc import Sequence

from probe.model.verdict import SEVERITY, VERDICTS

_FAILING_BY_SEVERITY = tuple(
    VERDICTS.index(kind) for kind in SEVERITY if kind in ("blocked", "throttled", "outage")
)


def vote_of(counts: Sequence[int]) -> int | None:
    """The index in ``VERDICTS`` of the vote of per-verdict run ``counts``; None without any."""
    total = sum(counts[:5])
    if total == 0:
        return None
    failing = counts[1] + counts[2] + counts[3]
    if 2 * failing > total:
        best = max(counts[1], counts[2], counts[3])
        return next(i for i in _FAILING_BY_SEVERITY if counts[i] == best)
    if 2 * counts[0] >= total:
        return 0
    return 4


def local_outage_vote(counts: Sequence[int], outage_local: int) -> bool:
    """Whether a key's vote is a local outage: an outage vote, mostly ``outage.local`` runs."""
    total = sum(counts[:5])
    return vote_of(counts) == 3 and 2 * outage_local >= total
