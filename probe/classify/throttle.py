"""Throttle rules: goodput against a control transfer on the same path, plateaus and stalls.

Throttling is slowness RELATIVE to a control on the same path, never an absolute speed: a
uniformly slow network slows the control too. The control is the same IP with the benign SNI when
that transfer really moved a large object (some CDNs serve it), else the run's canary control
transfer (a large object on an unrelated site, downloaded at the same time through the same
path). A control transfer proves something only when it moved a large object with a 2xx answer:
a refused one (a TLS alert), a server's default page (a few hundred bytes) or an error page is not
a control. With no working control, an unfinished transfer is inconclusive. A low ratio
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
from probe.model.methods import Method
from probe.model.observations import Direction, ThroughputObservation
from probe.model.verdict import ThroughputSummary

RATIO = 0.25  # endpoint/control goodput below this is "far slower"
STEADY_R2 = 0.9  # linear fit of cumulative bytes after warm-up at least this good: a plateau
MIN_SAMPLES = 4  # samples needed after the warm-up to judge steadiness
WARMUP = 0.2  # leading fraction of a transfer ignored (slow start, policer burst)
STALL_SECONDS = 1.0  # no progress for this long at the end of an unfinished transfer: a stall
# A control download that ended with less than this moved a page, not a large object: a server's
# default page or error page (nginx's is 615 bytes, a CDN's a few kB) cannot show what rate the
# path carries. Uploads send our own bytes: there the server's 2xx answer is what counts.
CONTROL_MIN_BYTES = 32 * 1024

_LABEL: dict[Direction, str] = {"down": "download", "up": "upload"}


def _transfers(ctx: Context, direction: Direction, *, control: bool) -> list[ThroughputObservation]:
    return [t for t in ctx.local.throughput if t.direction == direction and t.control is control]


def _fastest(transfers: list[ThroughputObservation]) -> ThroughputObservation | None:
    return max(transfers, key=lambda t: t.kbps) if transfers else None


def working_control(transfer: ThroughputObservation) -> bool:
    """Whether a control transfer shows the rate the path carries: a large object with a 2xx.

    A download moved at least ``CONTROL_MIN_BYTES``, or was still moving when its time ran out
    (a slow path); a refused transfer, a stalled one, an error page or a small default page is
    not one.
    """
    if transfer.failure is not None or transfer.bytes == 0:
        return False
    if transfer.status is not None and not 200 <= transfer.status < 300:
        return False
    if transfer.direction == "up":
        return True
    return transfer.bytes >= CONTROL_MIN_BYTES or not transfer.completed


def canary_transfers(ctx: Context, direction: Direction) -> list[ThroughputObservation]:
    """The run's canary control transfers in ``direction`` (the same path, another site)."""
    return [t for c in ctx.canaries.values() for t in c.throughput if t.direction == direction]


def control_for(ctx: Context, direction: Direction) -> ThroughputObservation | None:
    """The control to compare with: the same-IP benign-SNI transfer when it worked, else the
    canary control transfer when it worked, else None."""
    same_ip = [t for t in _transfers(ctx, direction, control=True) if working_control(t)]
    if same_ip:
        return _fastest(same_ip)
    return _fastest([t for t in canary_transfers(ctx, direction) if working_control(t)])


def describe_control(control: ThroughputObservation, best: ThroughputObservation) -> str:
    """Which control this is, in words."""
    if control.sni is not None and control.ip is not None and control.ip == best.ip:
        return f"the same IP with SNI {control.sni}"
    return f"the canary control {control.url}"


def summary(ctx: Context, direction: Direction) -> ThroughputSummary | None:
    """The contract's throughput object for ``direction``, when the endpoint moved data."""
    best = _fastest(_transfers(ctx, direction, control=False))
    if best is None or best.bytes == 0:
        return None
    control = control_for(ctx, direction)
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


def vantage_kbps(ctx: Context, direction: Direction) -> float | None:
    """The control vantage's fastest transfer of the endpoint in ``direction`` (None: none)."""
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
    control = control_for(ctx, direction)
    if all(stalled(t) for t in tries):
        return _stall(ctx, direction, tries, control)
    best = _fastest(tries)
    if best is None:
        return None
    if control is None or control.kbps == 0:
        return _uncontrolled(ctx, direction, best)
    ratio = best.kbps / control.kbps
    if ratio >= RATIO:
        return None
    what = describe_control(control, best)
    line = (
        f"{label} at {best.kbps:.0f} kbps vs {control.kbps:.0f} kbps for {what} on the same "
        f"path (ratio {ratio:.3f})"
    )
    vantage = vantage_kbps(ctx, direction)
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
        return Finding("throttled", Method.THROTTLE_STALL, 0.7, (line, why))
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
    return Finding("throttled", Method.THROTTLE_RATE, confidence, tuple(evidence))


def _uncontrolled(
    ctx: Context, direction: Direction, best: ThroughputObservation
) -> Finding | None:
    """No working control: a finished transfer says nothing, an unfinished one is a doubt."""
    if best.completed:
        return None
    tried = [*_transfers(ctx, direction, control=True), *canary_transfers(ctx, direction)]
    why = (
        f"no working control transfer on the same path ({_failed_controls(tried)}): "
        "cannot tell throttling from a slow path"
    )
    line = f"{_LABEL[direction]} at {best.kbps:.0f} kbps, unfinished after {best.seconds:.1f} s"
    return Finding("inconclusive", None, 0.3, (line, why))


def _failed_controls(tried: list[ThroughputObservation]) -> str:
    """Why each control transfer tried is not a control, in words."""
    if not tried:
        return "none was made"
    return "; ".join(f"{_control_name(t)}: {_why_not(t)}" for t in tried)


def _control_name(transfer: ThroughputObservation) -> str:
    return f"SNI {transfer.sni}" if transfer.ip is not None else transfer.url


def _why_not(transfer: ThroughputObservation) -> str:
    if transfer.bytes == 0:
        return f"refused ({transfer.failure.value})" if transfer.failure else "nothing moved"
    if transfer.failure is not None:
        return f"stalled after {transfer.bytes} bytes"
    if transfer.status is not None and not 200 <= transfer.status < 300:
        return f"HTTP {transfer.status}, an error page"
    return f"only {transfer.bytes} bytes, a page rather than a large object"


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
        why = "no control transfer on the same path completed a large object"
        return Finding("inconclusive", None, 0.4, (line, why))
    vantage = (
        [t for t in ctx.control.throughput if t.direction == direction and not t.control]
        if (ctx.control is not None)
        else []
    )
    if vantage and all(stalled(t) for t in vantage):
        why = "the control vantage's transfer stalls too: the server, not the path"
        return Finding("inconclusive", None, 0.5, (line, why))
    done = (
        f"{describe_control(control, first)} on the same path completed {control.bytes} bytes "
        f"at {control.kbps:.0f} kbps"
    )
    return Finding("throttled", Method.THROTTLE_STALL, 0.85, (line, done))
