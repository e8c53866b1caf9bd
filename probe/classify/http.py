"""HTTP rules: failures after the request was sent, blockpages and redirects out of the platform.

A response is not a failed try: a blockpage or an outside redirect counts from one response,
judged against the blockpage fingerprints and the control vantage's page. A timeout after a
completed handshake (https) or after the status line (either scheme) is throttling evidence,
not a block or an outage. The endpoint's own throughput transfer names the throttle when it shows
one; else the page's own progress does: a body still arriving at the deadline, far slower than
the control transfer on the same path, is ``throttle.rate`` (a large front page under a policer);
only a body whose bytes stopped for the stall interval (or none after the handshake) is
``throttle.stall``.
"""

from __future__ import annotations

from probe.classify import outage, throttle
from probe.classify.context import Context, answered, host_of, tls_failure
from probe.classify.finding import ONE_TRY, ONE_TRY_NOTE, Finding, describe, tries_phrase
from probe.classify.tries import ACTIVE_FAILURES, Tries, settle
from probe.fingerprints.blockpages import differences, fingerprint, urls
from probe.model.failures import Failure
from probe.model.methods import Method
from probe.model.observations import HTTPObservation, ThroughputObservation

REDIRECTS = frozenset({301, 302, 303, 307, 308})
METHODS: dict[Failure, Method] = {
    Failure.CONNECTION_RESET: Method.HTTP_RESET,
    Failure.CONNECTION_REFUSED: Method.HTTP_RESET,
    Failure.TIMEOUT: Method.HTTP_TIMEOUT,
    Failure.EOF: Method.HTTP_EOF,
}
MIN_ARRIVALS = 2  # body arrivals needed to tell a rate (the first may be a burst)
STOP_FACTOR = 2.0  # a body stopped: silent this many times its longest gap while arriving
_PATH_WORKS = "controls on the same path complete"


def check(ctx: Context) -> Finding | None:
    """Judge the endpoint's HTTP fetches."""
    fetches = ctx.local.http
    if not fetches:
        return None
    tries = settle([r.failure for r in fetches])
    if not tries.works:
        return _failed(ctx, fetches[0], tries, fetches)
    responses = [r for r in fetches if answered(r)]
    found = _redirect(ctx, responses) or _page(ctx, responses)
    if found is not None:
        return found
    if tries.outcome == "flaky":
        line = (
            f"GET {ctx.plan.url} {describe(tries.failure or Failure.UNKNOWN)} "
            f"{tries_phrase(tries.failed, tries.count)}, the retry got a response"
        )
        return Finding("reachable", None, 0.7, (line,))
    return None


def _failed(
    ctx: Context, first: HTTPObservation, tries: Tries, fetches: tuple[HTTPObservation, ...]
) -> Finding:
    failure = tries.failure or Failure.UNKNOWN
    where = f" at {first.ip}" if first.ip else ""
    line = (
        f"GET {first.url}{where} {describe(failure)} after the request was sent "
        f"({tries_phrase(tries.failed, tries.count)})"
    )
    down = outage.platform(ctx, "http")
    if down is not None:
        return down.after([line])
    method = METHODS.get(failure)
    if tries.outcome == "once":
        page = ctx.vantage_page
        if ctx.one_shot and method is not None and failure in ACTIVE_FAILURES and page:
            seen = (line, f"control vantage: HTTP {page.status}", ONE_TRY_NOTE)
            return Finding("blocked", method, ONE_TRY, seen)
        why = "failed once and was not retried: not enough to call a block"
        return Finding("inconclusive", None, 0.4, (line, why))
    handshake = any(tls_failure(h) is None for h in ctx.local.tls if not h.control)
    path = ctx.canary_answered or any(t.completed for t in ctx.local.throughput if t.control)
    started = [r for r in fetches if r.status is not None and r.status not in REDIRECTS]
    if failure is Failure.TIMEOUT and (started or (ctx.https and handshake)):
        if started:
            r = started[0]
            why = (
                f"the answer had started (HTTP {r.status}, {r.body_length or 0} bytes of body) "
                "when it timed out"
            )
        else:
            why = f"the TLS handshake with SNI {ctx.plan.domain} completed: a timeout after it"
        if path:
            measured = throttle.check(ctx)
            if measured is not None and measured.verdict == "throttled":
                return measured.after([line])  # the endpoint's own transfer shows the rate
            if started:
                progress = _progress(ctx, started[0], line)
                if progress is not None:
                    return progress
            stall = (line, f"{why}: throttling", "controls on the same path complete")
            return Finding("throttled", Method.THROTTLE_STALL, 0.7, stall)
        return Finding("inconclusive", None, 0.4, (line, f"{why}, but no control completed"))
    if method is None:
        return Finding("inconclusive", None, 0.4, (line,))
    page = ctx.vantage_page
    if not (ctx.canary_answered or page is not None):
        why = "no canary page on the same path and no control-vantage page"
        return Finding("inconclusive", None, 0.4, (line, why))
    evidence = [line]
    if ctx.canary_answered:
        evidence.append(f"canaries on the same path answer: {', '.join(sorted(ctx.canaries))}")
    confidence = 0.7 if ctx.https else 0.85
    if page is not None:
        evidence.append(f"control vantage: HTTP {page.status}")
        confidence += 0.05
    return Finding("blocked", method, confidence, tuple(evidence))


def _progress(ctx: Context, page: HTTPObservation, line: str) -> Finding | None:
    """Judge a body cut off by the deadline by how it was arriving (None: not recorded, or
    fewer than ``MIN_ARRIVALS`` arrivals: one burst then silence shows no rate).

    Stopped: silent for the stall interval, and far longer than any gap while it arrived (a TLS
    record under a policer reaches the application only whole, a second apart at 128 kbit/s).
    Still arriving: its rate against the control transfer on the same path.
    """
    samples, seconds = page.body_samples, page.body_seconds
    arrivals = [b for a, b in zip(samples, samples[1:], strict=False) if b[1] > a[1]]
    if len(arrivals) < MIN_ARRIVALS or seconds is None:
        return None  # one burst then silence (a shaper's queue) shows no rate: no call here
    last, total = samples[-1]
    quiet = max(seconds - last, 0.0)
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:], strict=False)]
    if quiet >= throttle.STALL_SECONDS and quiet >= STOP_FACTOR * max(gaps, default=0.0):
        why = (
            f"the body stopped after {total} bytes: no byte for the last {quiet:.1f} s before "
            "the timeout (throttling)"
        )
        return Finding("throttled", Method.THROTTLE_STALL, 0.75, (line, why, _PATH_WORKS))
    first_at, first_bytes = arrivals[0]
    kbps = (total - first_bytes) * 8 / 1000 / (last - first_at) if last > first_at else 0.0
    arriving = (
        f"the body was still arriving when it timed out: {total} bytes in {last:.1f} s "
        f"({kbps:.0f} kbps after the first burst), the last byte {quiet:.1f} s before the timeout"
    )
    control = throttle.control_for(ctx, "down")
    if control is None or control.kbps == 0:
        why = "no working control transfer on the same path to compare its rate with"
        return Finding("inconclusive", None, 0.4, (line, arriving, why))
    ratio = kbps / control.kbps
    versus = (
        f"{control.kbps:.0f} kbps for {throttle.describe_control(control, _as_transfer(page))} "
        f"on the same path (ratio {ratio:.3f})"
    )
    if ratio >= throttle.RATIO:
        why = f"not far slower than {versus}: a large page on a slow path, not throttling"
        return Finding("inconclusive", None, 0.5, (line, arriving, why))
    evidence = [line, arriving, f"far slower than {versus}"]
    fit = throttle.plateau(samples)
    if fit is not None and fit[0] >= throttle.STEADY_R2:
        evidence.append(f"steady at {fit[1]:.0f} kbps (R² {fit[0]:.2f}): a policer's plateau")
    vantage = throttle.vantage_kbps(ctx, "down")
    if vantage is not None:
        evidence.append(f"control vantage transfers at {vantage:.0f} kbps")
    return Finding("throttled", Method.THROTTLE_RATE, 0.8, tuple(evidence))


def _as_transfer(page: HTTPObservation) -> ThroughputObservation:
    """The page fetch as a transfer, to name the control it is compared with."""
    return ThroughputObservation(url=page.url, ip=page.ip, t0=page.t0, t=page.t)


def _redirect(ctx: Context, responses: list[HTTPObservation]) -> Finding | None:
    away: list[str] = []
    for r in responses:
        host = next((h for h in map(host_of, urls(r)) if h and not ctx.in_platform(h)), None)
        if host is None:
            return None  # some response stayed within the platform
        away.append(host)
    first, host = responses[0], away[0]
    line = (
        f"GET {first.url} redirected to {host} (HTTP {first.status}), outside "
        f"{', '.join(ctx.plan.platform_domains)}"
    )
    fp = fingerprint(first)
    known = [f"{host} matches blockpage fingerprint {fp.name}"] if fp is not None else []
    page = ctx.vantage_page
    if page is not None and not urls(page):
        page = None  # the control page does not say where it ended (OONI's test helper)
    if page is not None:
        if host in {host_of(u) for u in urls(page)}:
            why = "the control vantage is redirected there too: the platform's own redirect"
            return Finding("reachable", None, 0.8, (line, why))
        evidence = (line, *known, f"control vantage: HTTP {page.status} within the platform")
        return Finding("blocked", Method.HTTP_REDIRECT, 0.95 if known else 0.9, evidence)
    if known:
        return Finding("blocked", Method.HTTP_REDIRECT, 0.85, (line, *known))
    why = (
        "no control-vantage page with its URL to tell the platform's own redirects from a "
        "warning page"
    )
    return Finding("inconclusive", None, 0.4, (line, why))


def _page(ctx: Context, responses: list[HTTPObservation]) -> Finding | None:
    hits = [(r, fp) for r in responses if (fp := fingerprint(r)) is not None]
    if hits:
        r, fp = hits[0]
        line = f"GET {r.url}: HTTP {r.status} matching blockpage fingerprint {fp.name}"
        if len(hits) < len(responses):
            why = f"{len(responses) - len(hits)} other tries got a normal page"
            return Finding("inconclusive", None, 0.5, (line, why))
        if fp.specific:
            return Finding("blocked", Method.HTTP_BLOCKPAGE, 0.95, (line, f"title {r.title!r}"))
        return _vague(ctx, r, line, fp.scope)
    if all((r.status or 0) >= 500 for r in responses):
        count = tries_phrase(len(responses), len(responses))
        line = f"GET {ctx.plan.url}: HTTP {responses[0].status} {count}"
        down = outage.platform(ctx, "http")
        if down is not None:
            return down.after([line])
        why = "a server error here, but not from the control vantage (or no control vantage)"
        return Finding("inconclusive", None, 0.4, (line, why))
    page = ctx.vantage_page
    if page is None:
        return None
    diffs = [differences(r, page) for r in responses]
    if not all(diffs):
        return None
    line = f"GET {responses[0].url}: a different page than the control vantage's"
    return Finding("blocked", Method.HTTP_BLOCKPAGE, 0.75, (line, *diffs[0]))


def _vague(ctx: Context, response: HTTPObservation, line: str, scope: str) -> Finding:
    """A match of a broad fingerprint (a filtering product, a generic word): only a block when
    the page also differs from the control vantage's."""
    page = ctx.vantage_page
    kind = f"a broad fingerprint (scope {scope}) that ordinary pages can match too"
    if page is None:
        why = f"{kind}, and no control-vantage page to compare with"
        return Finding("inconclusive", None, 0.5, (line, why))
    diff = differences(response, page)
    if not diff:
        why = f"{kind}; the control vantage gets the same page"
        return Finding("reachable", None, 0.7, (line, why))
    return Finding("blocked", Method.HTTP_BLOCKPAGE, 0.9, (line, *diff))
