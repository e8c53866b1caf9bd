"""Throttle rules: goodput against a control transfer on the same path, plateaus and stalls.

Throttling is slowness RELATIVE to a control on the same path (the same IP with a benign SNI, or
a canary), never an absolute speed: a uniformly slow network slows the control too. A low ratio
counts only at a steady low rate (a policer's plateau: cumulative bytes grow linearly after the
warm-up, at a slope far below the control's) and only when the control vantage does not see the
endpoint just as slow (a slow server). A transfer that stops with no reset while the control
completes is a stall: no progress for a second or more at the end. A policer's drops cause
retransmission gaps of a few hundred milliseconds, not that.

Samples count bytes on the wire when the probe could read them (TCP_INFO), so they can run ahead
of ``bytes`` (what the application read) by a TLS record or a socket buffer.
"""

from __future__ import annotations

from probe.classify.context import Context
from probe.classify.finding import Finding, tries_phrase
from probe.model.failures import Failure
from probe.model.observations import Direction, ThroughputObservation
from probe.model.verdict import ThroughputSummary

RATIO = 0.25  # endpoint/control goodput below this is "far slower"
STEADY_R2 = 0.9  # linear fit of cumulative bytes after warm-up at least this good: a plateau
MIN_SAMPLES = 4  # samples needed after the warm-up to judge steadiness
WARMUP = 0.2  # leading fraction of a transfer ignored (slow start, policer burst)
STALL_SECONDS = 1.0  # no progress for this long at the end of an unfinished transfer: a stall

_LABEL: dict[Direction, str] = {"down": "download", "up": "upload"}


def _transfers(ctx: Context, direction: Direction, *, control: bool) -> list[ThroughputObservation]:
    return [t for t in ctx.local.throughput if t.direction == direction and t.control is control]


def _fastest(transfers: list[ThroughputObservation]) -> ThroughputObservation | None:
    return max(transfers, key=lambda t: t.kbps) if transfers else None


def summary(ctx: Context, direction: Direction) -> ThroughputSummary | None:
    """The contract's throughput object for ``direction``, when the endpoint moved data."""
    best = _fastest(_transfers(ctx, direction, control=False))
    if best is None or best.bytes == 0:
        return None
    control = _fastest(_transfers(ctx, direction, control=True))
    control_kbps = control.kbps if control is not None and control.kbps > 0 else None
    return ThroughputSummary(
        bytes=best.bytes,
        seconds=best.seconds,
        kbps=round(best.kbps, 1),
        control_kbps=round(control_kbps, 1) if control_kbps else None,
        ratio=round(best.kbps / control_kbps, 4) if control_kbps else None,
        samples=best.samples,
        direction=direction,
    )


def plateau(samples: tuple[tuple[float, int], ...]) -> tuple[float, float] | None:
    """(R² of a linear fit of bytes over time after the warm-up, slope in kbps), None if too few.

    Only the samples where bytes arrived count: a policer's drops make TCP wait for a
    retransmission, and the flat samples in between (or at the end) are those waits, not a
    change of rate. A loss-ridden fast transfer leaves too few arrivals after its warm-up.
    """
    if not samples:
        return None
    start = WARMUP * samples[-1][0]
    arrivals = [(t, b) for i, (t, b) in enumerate(samples) if i == 0 or b > samples[i - 1][1]]
    tail = [(t, b) for t, b in arrivals if t >= start]
    if len(tail) < MIN_SAMPLES:
        return None
    mean_t = sum(t for t, _ in tail) / len(tail)
    mean_b = sum(b for _, b in tail) / len(tail)
    sxx = sum((t - mean_t) ** 2 for t, _ in tail)
    sxy = sum((t - mean_t) * (b - mean_b) for t, b in tail)
    ss_tot = sum((b - mean_b) ** 2 for _, b in tail)
    if sxx == 0 or ss_tot == 0:
        return (0.0, 0.0)  # no time span, or no growth: no rate at all
    slope = sxy / sxx
    ss_res = sum((b - mean_b - slope * (t - mean_t)) ** 2 for t, b in tail)
    return (1 - ss_res / ss_tot, slope * 8 / 1000)


def moved(transfer: ThroughputObservation) -> int:
    """Bytes the transfer moved: on the wire (the last sample) or read, whichever is more."""
    return max(transfer.bytes, transfer.samples[-1][1] if transfer.samples else 0)


def idle(transfer: ThroughputObservation) -> float | None:
    """Seconds without progress at the end of ``transfer`` (None when that cannot be told)."""
    if moved(transfer) == 0:
        return transfer.seconds
    if not transfer.samples:
        return None
    final = transfer.samples[-1][1]
    last = next(t for t, b in transfer.samples if b >= final)
    return max(transfer.seconds, transfer.samples[-1][0]) - last


def stalled(transfer: ThroughputObservation) -> bool:
    """True for an unfinished transfer that stopped with no reset."""
    if transfer.completed or transfer.failure not in (None, Failure.TIMEOUT):
        return False
    quiet = idle(transfer)
    return quiet is not None and quiet >= STALL_SECONDS


def check(ctx: Context) -> Finding | None:
    """Judge both directions; a throttled direction wins over notes and doubts."""
    found = [f for f in (_direction(ctx, "down"), _direction(ctx, "up")) if f is not None]
    throttled = [f for f in found if f.verdict == "throttled"]
    if throttled:
        evidence = tuple(line for f in throttled for line in f.evidence)
        confidence = max(f.confidence for f in throttled)
        return Finding("throttled", throttled[0].method, confidence, evidence)
    doubts = [f for f in found if f.verdict == "inconclusive"]
    ranked = doubts or found
    return ranked[0] if ranked else None


def _vantage_kbps(ctx: Context, direction: Direction) -> float | None:
    if ctx.control is None:
        return None
    moved = [
        t.kbps
        for t in ctx.control.throughput
        if t.direction == direction and not t.control and t.bytes > 0
    ]
    return max(moved) if moved else None


def _direction(ctx: Context, direction: Direction) -> Finding | None:
    tries = _transfers(ctx, direction, control=False)
    if not tries:
        return None
    label = _LABEL[direction]
    control = _fastest(_transfers(ctx, direction, control=True))
    if all(stalled(t) for t in tries):
        return _stall(ctx, direction, tries, control)
    best = _fastest(tries)
    if best is None or control is None or control.kbps == 0:
        return None  # no same-path control: speed alone never means throttling
    ratio = best.kbps / control.kbps
    if ratio >= RATIO:
        return None
    same_ip = control.sni is not None and control.ip is not None and control.ip == best.ip
    what = f"the same IP with SNI {control.sni}" if same_ip else control.url
    line = (
        f"{label} at {best.kbps:.0f} kbps vs {control.kbps:.0f} kbps for {what} on the same "
        f"path (ratio {ratio:.3f})"
    )
    vantage = _vantage_kbps(ctx, direction)
    if vantage is not None and best.kbps / vantage >= RATIO:
        why = (
            f"the control vantage gets it at {vantage:.0f} kbps too: a slow server, not throttling"
        )
        return Finding("reachable", None, 0.7, (line, why))
    fit = plateau(best.samples)
    if best.bytes == 0 and control.completed and not best.completed:
        why = (
            f"none of the object arrived in {best.seconds:.1f} s while the control transfer on "
            f"the same path completed {control.bytes} bytes: the flow is held back"
        )
        return Finding("throttled", "throttle.stall", 0.7, (line, why))
    if fit is None:
        why = f"too few samples ({len(best.samples)}) to tell a policer plateau from noise"
        return Finding("inconclusive", None, 0.4, (line, why))
    r2, rate = fit
    if r2 < STEADY_R2:
        why = f"rate not steady (R² {r2:.2f}): loss or congestion rather than a policer"
        return Finding("inconclusive", None, 0.5, (line, why))
    if rate >= RATIO * control.kbps:
        why = (
            f"after the start it ran at {rate:.0f} kbps, not far below the control: "
            "a slow start or a stall rather than a policer's plateau"
        )
        return Finding("inconclusive", None, 0.5, (line, why))
    evidence = [line, f"steady at {rate:.0f} kbps (R² {r2:.2f}, {len(best.samples)} samples)"]
    confidence = 0.85
    if vantage is not None:
        evidence.append(f"control vantage gets it at {vantage:.0f} kbps")
        confidence = 0.9
    return Finding("throttled", "throttle.rate", confidence, tuple(evidence))


def _stall(
    ctx: Context,
    direction: Direction,
    tries: list[ThroughputObservation],
    control: ThroughputObservation | None,
) -> Finding:
    first = tries[0]
    line = (
        f"{_LABEL[direction]} of {first.url} stopped after {moved(first)} bytes with no reset, "
        f"idle for {idle(first) or 0.0:.1f} s ({tries_phrase(len(tries), len(tries))})"
    )
    if control is None or not control.completed:
        why = "the control transfer on the same path did not complete either"
        return Finding("inconclusive", None, 0.4, (line, why))
    vantage = (
        [t for t in ctx.control.throughput if t.direction == direction and not t.control]
        if (ctx.control is not None)
        else []
    )
    if vantage and all(stalled(t) for t in vantage):
        why = "the control vantage's transfer stalls too: the server, not the path"
        return Finding("inconclusive", None, 0.5, (line, why))
    done = f"the control transfer on the same path completed {control.bytes} bytes"
    return Finding("throttled", "throttle.stall", 0.85, (line, done))
