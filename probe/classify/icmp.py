"""Rate-limited ICMP: one run's unreachable answers shared between endpoints on the same address.

A router that null-routes an address answers with ICMP host (or network) unreachable, but routers
rate-limit ICMP (Linux: a burst of 6 to one host, then one a second), so a probe opening many
connections at once meets silence on some of them. An endpoint whose every try fell in the
silence reads ``tcp.timeout`` on its own. When other connections of the same run to each of its
addresses were answered with ICMP unreachable, the silence is that same null route: the endpoint
is blocked by ``tcp.unreachable``, and its evidence says why. Only the method changes: the verdict
was already a block on its own evidence (canaries, control vantage).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from probe.classify.families import summary
from probe.model.failures import Failure
from probe.model.measurement import Measurement
from probe.model.methods import Method
from probe.model.verdict import Family, FamilyVerdict
from probe.net.family import family_of

UNREACHABLE = frozenset({Failure.HOST_UNREACHABLE, Failure.NETWORK_UNREACHABLE})


def unreachable_addresses(measurements: Iterable[Measurement]) -> frozenset[str]:
    """The addresses that some connect of the run was answered with ICMP unreachable for."""
    return frozenset(c.ip for m in measurements for c in m.local.tcp if c.failure in UNREACHABLE)


def share_unreachable(measurements: Sequence[Measurement]) -> list[Measurement]:
    """``measurements`` with ``tcp.timeout`` blocks turned ``tcp.unreachable`` where the run saw
    ICMP unreachable for every address the endpoint timed out on (over each family on its own)."""
    answered = unreachable_addresses(measurements)
    return [_shared(m, answered) if answered else m for m in measurements]


def _timed_out(measurement: Measurement, family: Family | None = None) -> frozenset[str]:
    return frozenset(
        c.ip
        for c in measurement.local.tcp
        if c.failure is Failure.TIMEOUT and (family is None or family_of(c.ip) == family)
    )


def _covered(silent: frozenset[str], answered: frozenset[str]) -> bool:
    return bool(silent) and silent <= answered


def _shared(measurement: Measurement, answered: frozenset[str]) -> Measurement:
    verdict = measurement.verdict
    families: dict[Family, FamilyVerdict] = dict(verdict.families or {})
    changed = [
        f
        for f, v in families.items()
        if v.method is Method.TCP_TIMEOUT and _covered(_timed_out(measurement, f), answered)
    ]
    for family in changed:
        families[family] = FamilyVerdict(kind="blocked", method=Method.TCP_UNREACHABLE)
    if families:
        # The joined method is one family's: it changes when no family is left at a timeout.
        top = bool(changed) and all(v.method is not Method.TCP_TIMEOUT for v in families.values())
    else:
        top = _covered(_timed_out(measurement), answered)
    top = top and verdict.method is Method.TCP_TIMEOUT
    if not top and not changed:
        return measurement
    evidence = list(verdict.evidence)
    if families:
        evidence[0] = summary(families)  # "blocked over IPv4 (tcp.unreachable), ..."
    ips = ", ".join(sorted(_timed_out(measurement) & answered))
    evidence.append(
        f"ICMP unreachable came for other connections to {ips} in this run: routers rate-limit "
        "ICMP, so the connects that timed out met the same null route"
    )
    update: dict[str, object] = {"evidence": tuple(evidence)}
    if top:
        update["method"] = Method.TCP_UNREACHABLE
    if families:
        update["families"] = families
    shared = verdict.model_copy(update=update)
    return measurement.model_copy(update={"verdict": shared})
