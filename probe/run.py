"""One probe run: measure the canaries and every endpoint of the chosen platforms, then classify.

``run_check`` measures the canaries once, then every endpoint concurrently (at most
``concurrency`` at a time), asks the control vantage about the endpoints whose local result shows
a failure (and, when configured, for a throughput comparison), classifies each endpoint and builds
one ``Measurement`` per endpoint and the ``RunDocument`` of the verdict contract: a result per
endpoint and a summary per platform. The probe's address appears nowhere: the vantage point is
described by the labels the user configured. The measuring and classifying functions are
parameters, so the orchestration can be exercised with fakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from probe import __version__
from probe.budget import HANDSHAKE_ALLOWANCE, DataBudget, bytes_transferred
from probe.config import ProbeConfig
from probe.flows import canary_transfer
from probe.flows.canary_transfer import CanaryTransfer
from probe.flows.families import IPV6_OFF, NO_IPV6, settings_for_run
from probe.flows.plan import (
    NO_LARGE_OBJECT_NOTE,
    EndpointPlan,
    MeasureSettings,
    transfer_bytes,
)
from probe.model import (
    EndpointResult,
    Http3Verdict,
    Measurement,
    Observations,
    ProbeInfo,
    RunDocument,
    VantageInfo,
    Verdict,
    VerdictKind,
    worst,
)
from probe.platforms import Platform, host_of, within

logger = logging.getLogger(__name__)

SOFTWARE = "blockprobe"


class MeasureEndpoint(Protocol):
    """``probe.flows.web.measure_endpoint``."""

    def __call__(
        self, plan: EndpointPlan, settings: MeasureSettings, *, with_throughput: bool = True
    ) -> Awaitable[Observations]: ...


class AskControl(Protocol):
    """``probe.helper.ask_control``: the control vantage's observations, or None."""

    def __call__(
        self,
        helper_url: str,
        plan: EndpointPlan,
        *,
        with_throughput: bool,
        ca_file: Path | None,
        timeout: float,
    ) -> Awaitable[Observations | None]: ...


MeasureCanary = Callable[[str, MeasureSettings], Awaitable[Observations]]
Classify = Callable[
    [EndpointPlan, Observations, Observations | None, dict[str, Observations]], Verdict
]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Done:
    """One endpoint's outcome, before it becomes results."""

    plan: EndpointPlan
    measurement: Measurement


def shows_failure(plan: EndpointPlan, local: Observations) -> bool:
    """Whether the local observations show anything a control vantage could explain.

    A step failure, no HTTP response at all, a certificate that did not validate, an HTTP error
    status, a redirect off the platform's domains, a transfer that did not complete, every QUIC
    handshake with the platform SNI failing, or system resolver answers disjoint from the control
    resolver's.
    """
    failures = (
        *(o.failure for o in local.dns),
        *(o.failure for o in local.tcp),
        *(o.failure for o in local.tls),
        *(o.failure for o in local.http),
        *(o.failure for o in local.throughput),
    )
    if any(f is not None for f in failures):
        return True
    if not local.http:
        return True
    if any(tls.cert_valid is False for tls in local.tls):
        return True
    for http in local.http:
        if http.status is not None and http.status >= 400:
            return True
        if http.final_url and not within(host_of(http.final_url), plan.platform_domains):
            return True
    if any(not t.completed for t in local.throughput):
        return True
    platform_quic = [q for q in local.quic if not q.control and q.skipped is None]
    if platform_quic and all(q.failure is not None for q in platform_quic):
        return True  # HTTP/3 failed here: does the platform answer QUIC from outside?
    system = {a for d in local.dns if not d.control for a in d.addresses}
    control = {a for d in local.dns if d.control for a in d.addresses}
    return bool(system and control and system.isdisjoint(control))


def got_through(observations: Observations) -> bool:
    """Whether anything beyond DNS worked: a TCP connect, a TLS handshake or an HTTP response."""
    return (
        any(c.failure is None for c in observations.tcp)
        or any(h.failure is None for h in observations.tls)
        or any(h.failure is None and h.status is not None for h in observations.http)
    )


def no_path(local: Observations, canaries: dict[str, Observations]) -> bool:
    """Whether this vantage has no working path: neither a canary nor the endpoint got through.

    The control vantage is not asked then: it could not be reached either, and waiting for it
    would only add its time limit to a run that will say ``outage.local``.
    """
    return (
        bool(canaries) and not any(map(got_through, canaries.values())) and not got_through(local)
    )


def endpoint_time_limit(settings: MeasureSettings, with_throughput: bool) -> float:
    """A generous ceiling on one endpoint's measurement (a safety net; steps time themselves)."""
    t = settings.timeouts
    resolvers = 1 + len(settings.control_resolvers)
    one_try = t.dns * resolvers + t.tcp_connect + 2 * t.tls_handshake + t.http_total
    transfers = 4 * t.throughput if with_throughput else 0.0
    return (settings.retries + 1) * one_try + transfers + 2.0


def transfer_cost(plan: EndpointPlan, settings: MeasureSettings) -> int:
    """Bytes to reserve before measuring ``plan`` with its throughput/upload transfers: each
    transfer and its same-path control."""
    down = up = 0
    if plan.throughput_url:
        down = sum(transfer_bytes(settings, up=False, control=c) for c in (False, True))
    if plan.upload_url:
        up = sum(transfer_bytes(settings, up=True, control=c) for c in (False, True))
    return down + up


def page_cost(settings: MeasureSettings) -> int:
    """Bytes to reserve before measuring an endpoint or a canary at all: its page (every try of
    the fetch, over both families, shares ``page_bytes``) and the allowance for DNS, handshakes
    and headers."""
    return settings.page_bytes + HANDSHAKE_ALLOWANCE


MIN_TRANSFER = 32 * 1024  # a transfer is not made smaller than this to fit a run's budget


def fit_settings(
    settings: MeasureSettings, plans: Sequence[EndpointPlan], room: int
) -> MeasureSettings:
    """``settings`` with page and transfer sizes that let ``plans`` and the canaries fit ``room``.

    The pages come first: when even they do not fit, each page gets an equal share of what is
    left and no transfer is made. Otherwise the downloads (every endpoint's, their controls and
    the run's canary control) are scaled down together so they fit beside the pages and the
    uploads, but never below ``MIN_TRANSFER``: transfers that still do not fit are skipped when
    their turn comes.
    """
    pages = len(plans) + len(settings.canaries)
    if pages and page_cost(settings) * pages > room:
        page = max(room // pages - HANDSHAKE_ALLOWANCE, 0)
        return dataclasses.replace(settings, page_bytes=page, throughput_bytes=0, upload_bytes=0)
    down = sum(transfer_bytes(settings, up=False, control=c) for c in (False, True))
    up = sum(transfer_bytes(settings, up=True, control=c) for c in (False, True))
    downloads = down * sum(1 for p in plans if p.throughput_url)
    uploads = up * sum(1 for p in plans if p.upload_url)
    if settings.throughput_canary and any(p.throughput_url for p in plans):
        downloads += canary_transfer.size(settings, "down")
    if settings.upload_canary and any(p.upload_url for p in plans):
        uploads += canary_transfer.size(settings, "up")
    left = room - page_cost(settings) * pages
    if downloads + uploads <= left:
        return settings
    # Uploads are small already: a policer's burst would hide a throttle from a smaller one.
    scale = max(left - uploads, 0) / downloads if downloads else 0.0

    def scaled(size: int) -> int:
        return max(int(size * scale), min(size, MIN_TRANSFER))

    return dataclasses.replace(settings, throughput_bytes=scaled(settings.throughput_bytes))


def vantage_info(config: ProbeConfig) -> VantageInfo:
    """The vantage point as the user labelled it: country, ASN, network name; never an address."""
    v = config.vantage
    return VantageInfo(
        country=v.country, asn=v.asn, network=v.network, software=f"{SOFTWARE}/{__version__}"
    )


def probe_info(config: ProbeConfig) -> ProbeInfo:
    """The run document's ``probe`` object."""
    v = config.vantage
    return ProbeInfo(
        software=SOFTWARE, version=__version__, country=v.country, asn=v.asn, network=v.network
    )


def endpoint_result(measurement: Measurement) -> EndpointResult:
    """The contract's result row for one measured endpoint."""
    v = measurement.verdict
    return EndpointResult(
        platform=measurement.platform,
        target=measurement.target,
        domain=measurement.domain,
        verdict=v.kind,
        method=v.method,
        confidence=v.confidence,
        evidence=v.evidence,
        throughput=v.throughput,
        measurement_id=measurement.measurement_id,
        http3=v.http3,
        families=v.families,
    )


def only_upgrades(target: str, local: Observations) -> bool:
    """Whether an ``http://`` endpoint answered only by redirecting to ``https://``.

    Such an answer carries none of the platform: it says that port 80 works, not that the
    platform can be used (the https:// address it sends the browser to is measured on its own).
    """
    if urlsplit(target).scheme != "http":
        return False
    pages = [r for r in local.http if r.failure is None]
    return bool(pages) and all(
        r.status is not None
        and 300 <= r.status < 400
        and bool(r.redirects)
        and urlsplit(r.redirects[-1]).scheme == "https"
        for r in pages
    )


def platform_summary(
    platform: str, endpoints: Sequence[EndpointResult], upgrades: frozenset[str] = frozenset()
) -> EndpointResult:
    """The platform's summary row: the worst endpoint verdict, ``partial`` when mixed.

    The method and confidence are those of the first endpoint with the worst verdict; the evidence
    lists every endpoint that is not reachable. Endpoints in ``upgrades`` (reachable only as a
    redirect to https://, see ``only_upgrades``) do not make a blocked platform ``partial``.
    """
    kinds: list[VerdictKind] = [e.verdict for e in endpoints]
    verdict = worst(kinds)
    first = next((e for e in endpoints if e.verdict == verdict), None)
    working = [e for e in endpoints if e.verdict == "reachable" and e.target not in upgrades]
    reachable = sum(1 for k in kinds if k == "reachable")
    evidence = tuple(
        f"{e.target}: {e.verdict}" + (f" ({e.method})" if e.method else "")
        for e in endpoints
        if e.verdict != "reachable"
    )
    if evidence and not working and reachable:
        evidence += tuple(
            f"{e.target}: reachable, but it only redirects to https:// (not counted as working)"
            for e in endpoints
            if e.verdict == "reachable"
        )
    quic_only = http3_blocked_over_tcp(endpoints)
    return EndpointResult(
        platform=platform,
        target=None,
        domain=None,
        verdict=verdict,
        method=first.method if first else None,
        confidence=first.confidence if first else 0.0,
        evidence=(
            *(evidence or (f"{reachable} of {len(endpoints)} endpoints reachable",)),
            *(
                f"{e.target}: HTTP/3 blocked ({e.http3.method}), HTTPS over TCP reachable"
                for e in quic_only
                if e.http3 is not None
            ),
        ),
        throughput=None,
        measurement_id=None,
        partial=(bool(working) and reachable < len(kinds)) or bool(quic_only),
        http3=http3_summary(endpoints),
    )


def http3_blocked_over_tcp(endpoints: Sequence[EndpointResult]) -> list[EndpointResult]:
    """Endpoints whose HTTP/3 is blocked while HTTPS over TCP to them is reachable: they make
    the platform summary ``partial`` (never blocked on their own; docs/verdicts.md, "HTTP/3")."""
    return [
        e
        for e in endpoints
        if e.verdict == "reachable" and e.http3 is not None and e.http3.kind == "blocked"
    ]


def http3_summary(endpoints: Sequence[EndpointResult]) -> Http3Verdict | None:
    """The platform's HTTP/3 result: the worst of its endpoints' (None when none was measured)."""
    measured = [e.http3 for e in endpoints if e.http3 is not None]
    if not measured:
        return None
    kind = worst([h.kind for h in measured])
    first = next(h for h in measured if h.kind == kind)
    lines = tuple(
        f"{e.target}: HTTP/3 {e.http3.kind}" + (f" ({e.http3.method})" if e.http3.method else "")
        for e in endpoints
        if e.http3 is not None
    )
    return Http3Verdict(kind=kind, method=first.method, confidence=first.confidence, evidence=lines)


def _default_measure() -> MeasureEndpoint:
    from probe.flows.web import measure_endpoint

    return measure_endpoint


def _default_canary() -> MeasureCanary:
    from probe.flows.web import measure_canary

    return measure_canary


def _default_ask_control() -> AskControl:
    from probe.helper import ask_control

    return ask_control


def _default_classify() -> Classify:
    from probe.classify import classify

    return classify


async def run_check(
    config: ProbeConfig,
    platforms: Sequence[Platform] | None = None,
    *,
    measure: MeasureEndpoint | None = None,
    measure_canary: MeasureCanary | None = None,
    classify: Classify | None = None,
    ask_control: AskControl | None = None,
    progress: Progress | None = None,
    budget: DataBudget | None = None,
) -> tuple[RunDocument, list[Measurement]]:
    """Measure ``platforms`` (the configured ones when None) once: the run document, measurements.

    ``budget`` (from the config when None) counts every byte transferred; throughput and upload
    transfers that would exceed it are skipped.
    """
    measure = measure or _default_measure()
    measure_canary = measure_canary or _default_canary()
    classify = classify or _default_classify()
    if config.helper_url is not None:
        ask_control = ask_control or _default_ask_control()
    chosen = list(platforms) if platforms is not None else config.chosen_platforms()
    budget = budget if budget is not None else DataBudget(config.budget.run_bytes)
    plans = [plan for platform in chosen for plan in platform.plans()]
    settings = fit_settings(settings_for_run(config.to_settings()), plans, budget.remaining)
    notes = () if settings.ipv6 else (IPV6_OFF if config.ipv6 == "off" else NO_IPV6,)
    report = progress or (lambda message: None)
    vantage = vantage_info(config)
    started_at = datetime.now(UTC)
    # Every page (and handshake allowance) of the run is reserved before anything moves; each
    # endpoint and canary releases its share when it is done.
    pages = len(plans) + len(settings.canaries)
    page_held = page_cost(settings) if budget.reserve(page_cost(settings) * pages) else 0

    async def measure_canaries() -> dict[str, Observations]:
        canary_obs = await asyncio.gather(*(measure_canary(u, settings) for u in settings.canaries))
        found: dict[str, Observations] = {}
        for url, obs in zip(settings.canaries, canary_obs, strict=True):
            budget.settle(page_held, bytes_transferred(obs))
            key = host_of(url)
            found[url if key in found else key] = obs  # by domain; by URL when two share one
        return found

    # The canaries are measured alongside the endpoints: only the verdicts wait for them.
    report(f"measuring {len(settings.canaries)} canaries")
    canaries_task = asyncio.ensure_future(measure_canaries())
    report(f"measuring {len(plans)} endpoints of {', '.join(p.name for p in chosen)}")
    limit = asyncio.Semaphore(settings.concurrency)
    shared = _canary_transfer(plans, settings, budget)

    async def one(plan: EndpointPlan) -> _Done:
        async with limit:
            return await _measure_one(
                plan, config, settings, canaries_task, vantage, budget, measure, classify,
                ask_control, shared, page_held,
            )  # fmt: skip

    done: list[_Done] = []
    with canary_transfer.active(shared):  # the endpoints' flows start it with their transfers
        for finished in asyncio.as_completed([one(p) for p in plans]):
            item = await finished
            done.append(item)
            v = item.measurement.verdict
            report(
                f"[{len(done)}/{len(plans)}] {item.plan.url}: {v.kind}"
                + (f" ({v.method})" if v.method else "")
            )

    await canaries_task  # measured (and counted) even when no endpoint was chosen
    for transfer in shared:
        moved = await transfer.finish()  # each endpoint that started it waited for it: done
        budget.settle(transfer.size, moved.bytes if moved is not None else 0)
    by_url = {(d.plan.platform, d.plan.url): d.measurement for d in done}
    from probe.classify.icmp import share_unreachable  # with the classifier: loaded on first use

    # Routers rate-limit ICMP: a timeout where the run saw the same address unreachable is that.
    measurements = share_unreachable([by_url[(p.platform, p.url)] for p in plans])
    results: list[EndpointResult] = []
    for platform in chosen:
        mine = [m for m in measurements if m.platform == platform.name]
        upgrades = frozenset(m.target for m in mine if only_upgrades(m.target, m.local))
        rows = [endpoint_result(m) for m in mine]
        results.append(platform_summary(platform.name, rows, upgrades))
        results.extend(rows)
    report(f"done: {budget.used} bytes transferred (budget {budget.limit})")
    document = RunDocument(
        probe=probe_info(config), started_at=started_at, results=tuple(results), notes=notes
    )
    return document, measurements


def _canary_transfer(
    plans: Sequence[EndpointPlan], settings: MeasureSettings, budget: DataBudget
) -> tuple[CanaryTransfer, ...]:
    """The run's canary control transfers (download, upload): one for each direction that some
    plan transfers in, when it is configured and the budget has room for it and for at least one
    of the endpoints' transfers (a control with nothing to compare is wasted data)."""
    wanted = (
        (settings.throughput_canary, "down", any(p.throughput_url for p in plans)),
        (settings.upload_canary, "up", any(p.upload_url for p in plans)),
    )
    costs = [cost for p in plans if (cost := transfer_cost(p, settings)) > 0]
    found: list[CanaryTransfer] = []
    for url, direction, needed in wanted:
        if url is None or not needed or not costs:
            continue
        transfer = CanaryTransfer(url, settings, "up" if direction == "up" else "down")
        if 0 < transfer.size <= budget.remaining - min(costs) and budget.reserve(transfer.size):
            found.append(transfer)
    return tuple(found)


async def _measure_one(
    plan: EndpointPlan,
    config: ProbeConfig,
    settings: MeasureSettings,
    canaries_ready: Awaitable[dict[str, Observations]],
    vantage: VantageInfo,
    budget: DataBudget,
    measure: MeasureEndpoint,
    classify: Classify,
    ask_control: AskControl | None,
    shared: tuple[CanaryTransfer, ...] = (),
    page_held: int = 0,
) -> _Done:
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    cost = transfer_cost(plan, settings)
    with_throughput = cost > 0 and budget.reserve(cost)
    local: Observations | None = None
    problem: str | None = None
    try:
        async with asyncio.timeout(endpoint_time_limit(settings, with_throughput)):
            local = await measure(plan, settings, with_throughput=with_throughput)
    except TimeoutError:
        problem = "the measurement did not finish within its time limit"
    except Exception as exc:  # a bug in a flow must not sink the other endpoints' results
        logger.exception("measuring %s failed", plan.url)
        problem = f"probe error while measuring: {type(exc).__name__}: {exc}"
    finally:
        reserved = page_held + (cost if with_throughput else 0)
        budget.settle(reserved, bytes_transferred(local or Observations()))

    canaries = await canaries_ready
    directions = {t.direction for t in local.throughput} if local is not None else set()
    if local is not None and any(r.body_samples for r in local.http):
        directions.add("down")  # a page cut off while arriving is judged by its rate too
    for transfer in shared:
        if transfer.started and transfer.direction in directions:
            canaries = canary_transfer.with_transfer(
                canaries, transfer.url, await transfer.result()
            )
    control: Observations | None = None
    # The control vantage is asked after the local transfers, never during them: in a lab on one
    # machine its transfers would share the CPU with the same-path comparison they are judged by.
    if local is not None and ask_control is not None and settings.helper_url is not None:
        compare = config.helper_throughput and with_throughput and bool(local.throughput)
        if (compare or shows_failure(plan, local)) and not no_path(local, canaries):
            control = await _ask(
                ask_control, settings.helper_url, plan, config, with_throughput=compare
            )

    if local is None:
        verdict = Verdict(kind="inconclusive", confidence=0.0, evidence=(problem or "",))
        local = Observations()
    else:
        verdict = classify(plan, local, control, canaries)
        if plan.no_large_object and verdict.kind in ("reachable", "throttled"):
            evidence = (*verdict.evidence, NO_LARGE_OBJECT_NOTE)
            verdict = verdict.model_copy(update={"evidence": evidence})
    measurement = Measurement(
        measurement_id=str(uuid.uuid4()),
        platform=plan.platform,
        target=plan.url,
        domain=plan.domain,
        started_at=started_at,
        runtime=time.monotonic() - t0,
        vantage=vantage,
        local=local,
        control=control,
        canaries=canaries,
        verdict=verdict,
    )
    return _Done(plan, measurement)


async def _ask(
    ask_control: AskControl,
    helper_url: str,
    plan: EndpointPlan,
    config: ProbeConfig,
    *,
    with_throughput: bool,
) -> Observations | None:
    try:
        return await ask_control(
            helper_url,
            plan,
            with_throughput=with_throughput,
            ca_file=config.ca_file,
            timeout=config.timeouts.helper_limit(with_throughput),
        )
    except Exception:  # the control vantage is optional: without it, classify decides alone
        logger.exception("asking the control vantage about %s failed", plan.url)
        return None
