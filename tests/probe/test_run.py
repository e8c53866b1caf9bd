"""The run orchestration with fake measure/classify/control functions: results, budget, controls."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field

import pytest

from probe.budget import HANDSHAKE_ALLOWANCE, DataBudget, bytes_transferred
from probe.config import ProbeConfig
from probe.flows.plan import NO_LARGE_OBJECT_NOTE, EndpointPlan, MeasureSettings
from probe.model import (
    DNSAnswer,
    DNSObservation,
    Failure,
    HTTPObservation,
    Measurement,
    Observations,
    RunDocument,
    TCPConnectObservation,
    ThroughputObservation,
    ThroughputSummary,
    TLSHandshakeObservation,
    Verdict,
)
from probe.platforms import Platform
from probe.run import (
    MIN_TRANSFER,
    fit_settings,
    page_cost,
    platform_summary,
    run_check,
    shows_failure,
)

SERVER = "198.18.100.10"
# What a real socket would know about our side: it must never reach the output.
LOCAL_ADDRESSES = ("127.0.0.1", "127.0.0.53", "127.1.2.3")


def platform(name: str, *paths: str, throughput: bool = False) -> Platform:
    """A platform on NAME.test with one endpoint per path; a 'big' path gets a throughput URL."""
    endpoints = []
    for path in paths:
        e: dict[str, str] = {"url": f"https://{name}.test/{path}"}
        if "big" in path:
            e["throughput_url"] = f"https://{name}.test/{path}.bin"
        endpoints.append(e)
    return Platform.model_validate(
        {
            "name": name,
            "title": name.title(),
            "domains": [f"{name}.test"],
            "endpoints": endpoints,
            "throughput": throughput,
        }
    )


def ok_observations(url: str, body: int = 1000) -> Observations:
    return Observations(
        dns=(
            DNSObservation(
                domain="d.test",
                resolver="udp:198.18.10.53",
                transport="system",
                rcode="NOERROR",
                answers=(DNSAnswer(rtype="A", value=SERVER, ttl=60),),
                t0=0.0,
                t=0.01,
            ),
        ),
        tcp=(TCPConnectObservation(ip=SERVER, port=443, t0=0.01, t=0.02),),
        tls=(TLSHandshakeObservation(ip=SERVER, sni="d.test", cert_valid=True, t0=0.02, t=0.03),),
        http=(HTTPObservation(url=url, ip=SERVER, status=200, body_length=body, t0=0.03, t=0.1),),
    )


def reset_observations(url: str) -> Observations:
    return Observations(
        tcp=(TCPConnectObservation(ip=SERVER, port=443, t0=0.0, t=0.01),),
        tls=(
            TLSHandshakeObservation(
                ip=SERVER, sni="d.test", failure=Failure.CONNECTION_RESET, t0=0.01, t=0.02
            ),
        ),
    )


@dataclass
class Fakes:
    """Scripted measure/classify/control functions that record how they were called."""

    behaviour: dict[str, str] = field(default_factory=dict)  # url -> ok|reset|slow|crash|hang
    measured: list[tuple[str, bool]] = field(default_factory=list)
    canaries_measured: list[str] = field(default_factory=list)
    control_asked: list[tuple[str, bool, float]] = field(default_factory=list)
    classified: list[tuple[str, bool]] = field(default_factory=list)
    canaries_down: bool = False
    in_flight: int = 0
    max_in_flight: int = 0

    async def measure(
        self, plan: EndpointPlan, settings: MeasureSettings, *, with_throughput: bool = True
    ) -> Observations:
        self.measured.append((plan.url, with_throughput))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            kind = self.behaviour.get(plan.url, "ok")
            if kind == "crash":
                raise RuntimeError("flow bug")
            if kind == "hang":
                await asyncio.sleep(3600)
            obs = reset_observations(plan.url) if kind == "reset" else ok_observations(plan.url)
            if with_throughput and plan.throughput_url:
                tp = ThroughputObservation(
                    url=plan.throughput_url,
                    ip=SERVER,
                    bytes=settings.throughput_bytes,
                    seconds=2.0 if kind == "slow" else 0.1,
                    completed=kind != "slow",
                    t0=0.1,
                    t=0.2,
                )
                obs = obs.model_copy(update={"throughput": (tp,)})
            return obs
        finally:
            self.in_flight -= 1

    async def measure_canary(self, url: str, settings: MeasureSettings) -> Observations:
        self.canaries_measured.append(url)
        if self.canaries_down:
            return Observations(
                tcp=(
                    TCPConnectObservation(
                        ip="198.18.101.10", port=443, failure=Failure.TIMEOUT, t0=0, t=1
                    ),
                )
            )
        return ok_observations(url, body=500)

    async def ask_control(
        self,
        helper_url: str,
        plan: EndpointPlan,
        *,
        with_throughput: bool,
        ca_file: object,
        timeout: float,  # noqa: ASYNC109 -- probe.helper.ask_control's contract takes one
    ) -> Observations | None:
        self.control_asked.append((plan.url, with_throughput, timeout))
        return ok_observations(plan.url)

    def classify(
        self,
        plan: EndpointPlan,
        local: Observations,
        control: Observations | None,
        canaries: dict[str, Observations],
    ) -> Verdict:
        self.classified.append((plan.url, control is not None))
        assert {"canary.test", "other-canary.test"} == set(canaries)
        if any(t.failure for t in local.tls):
            return Verdict(
                kind="blocked",
                method="tls.reset",
                confidence=0.9,
                evidence=(f"ClientHello reset at {SERVER}:443",),
            )
        if local.throughput and not local.throughput[0].completed:
            return Verdict(
                kind="throttled",
                method="throttle.stall",
                confidence=0.8,
                evidence=("stalled",),
                throughput=ThroughputSummary(bytes=1000, seconds=2.0, kbps=4.0),
            )
        return Verdict(kind="reachable", confidence=0.95)

    def run(self, config: ProbeConfig, platforms: list[Platform], **kwargs: object):
        return asyncio.run(
            run_check(
                config,
                platforms,
                measure=self.measure,
                measure_canary=self.measure_canary,
                classify=self.classify,
                ask_control=self.ask_control,
                **kwargs,  # type: ignore[arg-type]
            )
        )


def make_config(**overrides: object) -> ProbeConfig:
    base: dict[str, object] = {
        "canaries": ["https://canary.test/", "https://other-canary.test/"],
        "control_resolvers": ["udp:127.0.0.1:9"],
        "vantage": {"country": "PK", "asn": 17557, "network": "lab-isp1"},
    }
    base.update(overrides)
    return ProbeConfig.model_validate(base)


def summaries(document: RunDocument) -> dict[str, object]:
    return {r.platform: r for r in document.results if r.target is None}


def test_one_result_per_endpoint_and_one_summary_per_platform():
    """Each platform: a summary (target null) then its endpoints, in the platform file's order."""
    fakes = Fakes()
    plats = [platform("alpha", "", "a"), platform("beta", "")]
    document, measurements = fakes.run(make_config(), plats)
    targets = [(r.platform, r.target) for r in document.results]
    assert [
        ("alpha", None),
        ("alpha", "https://alpha.test/"),
        ("alpha", "https://alpha.test/a"),
        ("beta", None),
        ("beta", "https://beta.test/"),
    ] == targets
    assert 3 == len(measurements) == len(fakes.measured)
    ids = {m.measurement_id for m in measurements}
    assert 3 == len(ids)
    for result in document.results:
        if result.target is not None:
            assert result.measurement_id in ids
            assert "alpha.test" == result.domain or "beta.test" == result.domain
    assert {"https://canary.test/", "https://other-canary.test/"} == set(fakes.canaries_measured)
    assert 2 == len(fakes.canaries_measured), "canaries are measured once per run"


def test_summary_is_the_worst_verdict_with_partial_when_mixed():
    """blocked > throttled > reachable; partial only when some endpoints work and others do not."""
    fakes = Fakes(
        behaviour={
            "https://mixed.test/": "reset",
            "https://mixed.test/big": "slow",
            "https://down.test/": "reset",
            "https://down.test/b": "reset",
            "https://slow.test/big": "slow",
        }
    )
    plats = [
        platform("mixed", "", "big", "ok", throughput=True),
        platform("fine", "", "x"),
        platform("down", "", "b"),
        platform("slow", "big", "ok", throughput=True),
    ]
    document, _ = fakes.run(make_config(), plats)
    s = summaries(document)
    assert ("blocked", "tls.reset", True) == (
        s["mixed"].verdict,
        s["mixed"].method,
        s["mixed"].partial,
    )
    assert ("reachable", None, False) == (s["fine"].verdict, s["fine"].method, s["fine"].partial)
    assert ("blocked", False) == (s["down"].verdict, s["down"].partial)
    assert ("throttled", "throttle.stall", True) == (
        s["slow"].verdict,
        s["slow"].method,
        s["slow"].partial,
    )
    assert any("https://mixed.test/: blocked (tls.reset)" == e for e in s["mixed"].evidence)
    assert s["mixed"].measurement_id is None and s["mixed"].domain is None


def test_platform_summary_of_outage_and_inconclusive():
    """outage beats inconclusive; an all-inconclusive platform is not partial."""
    from probe.model import EndpointResult

    def row(verdict: str, method: str | None = None) -> EndpointResult:
        return EndpointResult(
            platform="p",
            target=f"https://p.test/{verdict}",
            domain="p.test",
            verdict=verdict,  # type: ignore[arg-type]
            method=method,
            confidence=0.5,
            evidence=(),
            throughput=None,
            measurement_id="m",
        )

    summary = platform_summary("p", [row("inconclusive"), row("outage", "outage.local")])
    assert ("outage", "outage.local", False) == (summary.verdict, summary.method, summary.partial)
    assert platform_summary("p", [row("inconclusive"), row("reachable")]).partial


def test_control_vantage_is_asked_only_about_failing_endpoints():
    """With a helper configured, only endpoints that show a failure are sent to it."""
    fakes = Fakes(behaviour={"https://alpha.test/bad": "reset"})
    config = make_config(helper_url="http://198.18.3.2:8480")
    document, measurements = fakes.run(config, [platform("alpha", "", "bad", "other")])
    assert ["https://alpha.test/bad"] == [url for url, _, _ in fakes.control_asked]
    by_target = {m.target: m for m in measurements}
    assert by_target["https://alpha.test/bad"].control is not None
    assert by_target["https://alpha.test/"].control is None
    assert ("https://alpha.test/bad", True) in fakes.classified
    assert ("https://alpha.test/", False) in fakes.classified
    (_, with_throughput, timeout) = fakes.control_asked[0]
    assert not with_throughput
    assert timeout == config.timeouts.helper_limit(False)


def test_control_vantage_compares_throughput_when_configured():
    """helper_throughput asks the helper about every endpoint that ran a throughput transfer."""
    fakes = Fakes()
    config = make_config(helper_url="http://198.18.3.2:8480", helper_throughput=True)
    fakes.run(config, [platform("alpha", "", "big", throughput=True)])
    assert [("https://alpha.test/big", True)] == [(u, t) for u, t, _ in fakes.control_asked]


def test_control_vantage_is_not_asked_when_this_vantage_has_no_path():
    """Canaries and endpoint all failed to connect: the helper is unreachable too; skip it."""
    fakes = Fakes(behaviour={"https://alpha.test/": "reset"}, canaries_down=True)
    blackholed = Observations(
        tcp=(TCPConnectObservation(ip=SERVER, port=443, failure=Failure.TIMEOUT, t0=0, t=1),)
    )

    async def measure(plan, settings, *, with_throughput=True):
        return blackholed if plan.url.endswith("/gone") else reset_observations(plan.url)

    config = make_config(helper_url="http://198.18.3.2:8480")
    asyncio.run(
        run_check(
            config,
            [platform("alpha", "", "gone")],
            measure=measure,
            measure_canary=fakes.measure_canary,
            classify=lambda plan, local, control, canaries: Verdict(
                kind="inconclusive", confidence=0.1
            ),
            ask_control=fakes.ask_control,
        )
    )
    # the reset endpoint got a TCP connect through, so the helper is asked about it
    assert ["https://alpha.test/"] == [url for url, _, _ in fakes.control_asked]


def test_no_helper_means_no_control_calls():
    """Without helper_url, failures are classified without a control vantage."""
    fakes = Fakes(behaviour={"https://alpha.test/": "reset"})
    fakes.run(make_config(), [platform("alpha", "")])
    assert [] == fakes.control_asked
    assert [("https://alpha.test/", False)] == fakes.classified


def test_transfers_are_scaled_down_to_fit_the_budget():
    """Pages (1 KiB each plus the handshake allowance, canaries included) are reserved first; the
    three 100 KiB transfers, their half-size controls and the 50 KiB canary control are scaled
    down together to fit the 300 KiB left over: every endpoint transfers, nothing is skipped."""
    fakes = Fakes()
    budget_config = {"run_bytes": 300 * 1024, "throughput_bytes": 100 * 1024, "page_bytes": 1024}
    config = make_config(budget=budget_config)
    budget = DataBudget(config.budget.run_bytes)
    plats = [platform("alpha", "big1", "big2", "big3", throughput=True)]
    _, measurements = fakes.run(config, plats, budget=budget)
    assert [True, True, True] == [with_tp for _, with_tp in fakes.measured]
    assert (0, 0) == (budget.skipped, budget.reserved)
    left = 300 * 1024 - 5 * (1024 + HANDSHAKE_ALLOWANCE)
    size = int(100 * 1024 * left / (3 * 150 * 1024 + 50 * 1024))
    expected = 2 * 500 + 3 * 1000 + 3 * size  # canaries, pages, three scaled transfers
    assert expected == budget.used
    assert expected == sum(bytes_transferred(m.local) for m in measurements) + 2 * 500


def test_throughput_skipped_when_it_would_exceed_the_budget():
    """With 150 KiB, scaling would make the transfers smaller than MIN_TRANSFER: they keep that
    size, the canary control and one endpoint transfer are reserved, two are skipped, and the run
    never overruns its budget (the fakes never start the control, so it moves nothing)."""
    fakes = Fakes()
    budget_config = {"run_bytes": 150 * 1024, "throughput_bytes": 100 * 1024, "page_bytes": 1024}
    config = make_config(budget=budget_config)
    budget = DataBudget(config.budget.run_bytes)
    plats = [platform("alpha", "big1", "big2", "big3", throughput=True)]
    _, measurements = fakes.run(config, plats, budget=budget)
    flags = [with_tp for _, with_tp in fakes.measured]
    assert 1 == flags.count(True) and 2 == flags.count(False)
    assert (2, 0) == (budget.skipped, budget.reserved)
    expected = 2 * 500 + 3 * 1000 + MIN_TRANSFER  # canaries, pages, one transfer
    assert expected == budget.used
    assert budget.used <= budget.limit


def test_pages_alone_over_the_budget_share_it_and_nothing_transfers():
    """A budget smaller than the pages: each page gets an equal share, no transfer is made."""
    settings = make_config().to_settings()
    plans = [p for plat in [platform("alpha", "a", "b", throughput=True)] for p in plat.plans()]
    fitted = fit_settings(settings, plans, 40 * 1024)
    assert (0, 0) == (fitted.throughput_bytes, fitted.upload_bytes)
    assert 4 * page_cost(fitted) <= 40 * 1024 < 4 * page_cost(settings)


def test_throughput_never_asked_when_the_platform_forbids_it():
    """throughput = false in the platform file: the flows are told not to transfer."""
    fakes = Fakes()
    fakes.run(make_config(), [platform("alpha", "big", throughput=False)])
    assert [("https://alpha.test/big", False)] == fakes.measured


def test_concurrency_is_bounded():
    """No more than `concurrency` endpoints are measured at once."""
    fakes = Fakes()
    paths = [f"p{i}" for i in range(12)]
    fakes.run(make_config(concurrency=3), [platform("alpha", *paths)])
    assert 3 == fakes.max_in_flight
    assert 12 == len(fakes.measured)


def test_a_crashing_flow_gives_inconclusive_and_the_run_goes_on(caplog):
    """A bug in one endpoint's flow makes that endpoint inconclusive, not the run crash."""
    fakes = Fakes(behaviour={"https://alpha.test/boom": "crash"})
    document, _ = fakes.run(make_config(), [platform("alpha", "", "boom")])
    rows = {r.target: r for r in document.results}
    assert "inconclusive" == rows["https://alpha.test/boom"].verdict
    assert "RuntimeError: flow bug" in rows["https://alpha.test/boom"].evidence[0]
    assert "reachable" == rows["https://alpha.test/"].verdict
    assert "measuring https://alpha.test/boom failed" in caplog.text


@pytest.mark.slow
def test_a_hung_flow_is_cut_off_within_its_time_limit():
    """A flow that never returns is stopped at the endpoint's time limit."""
    fakes = Fakes(behaviour={"https://alpha.test/": "hang"})
    t = {"dns": 0.01, "tcp_connect": 0.01, "tls_handshake": 0.01, "http_total": 0.01}
    config = make_config(retries=0, timeouts=t)
    start = time.monotonic()
    document, _ = fakes.run(config, [platform("alpha", "")])
    assert time.monotonic() - start < 5.0
    row = next(r for r in document.results if r.target)
    assert "inconclusive" == row.verdict
    assert "time limit" in row.evidence[0]


def test_no_probe_address_anywhere_in_the_output():
    """Only the configured labels describe the vantage; no local address or host name leaks."""
    fakes = Fakes(behaviour={"https://alpha.test/": "reset"})
    config = make_config(helper_url="http://198.18.3.2:8480")
    document, measurements = fakes.run(config, [platform("alpha", "", "a")])
    texts = [document.model_dump_json()] + [m.model_dump_json() for m in measurements]
    hostname = socket.gethostname()
    for text in texts:
        for address in LOCAL_ADDRESSES:
            assert address not in text
        assert "127." not in text
        assert f'"{hostname}"' not in text
    probe = json.loads(document.model_dump_json())["probe"]
    assert {
        "software": "blockprobe",
        "version": probe["version"],
        "country": "PK",
        "asn": 17557,
        "network": "lab-isp1",
    } == probe
    for m in measurements:
        assert ("PK", 17557, "lab-isp1") == (m.vantage.country, m.vantage.asn, m.vantage.network)


def test_measurements_carry_time_and_canaries():
    """started_at is UTC, runtime is measured, canaries are attached by domain."""
    fakes = Fakes()
    document, measurements = fakes.run(make_config(), [platform("alpha", "")])
    (m,) = measurements
    assert isinstance(m, Measurement)
    assert m.started_at.utcoffset() is not None and 0 == m.started_at.utcoffset().total_seconds()
    assert m.started_at >= document.started_at
    assert m.runtime > 0
    assert {"canary.test", "other-canary.test"} == set(m.canaries)
    RunDocument.model_validate_json(document.model_dump_json())


def test_progress_reports_each_endpoint():
    """The progress callback hears about every endpoint and the data used."""
    messages: list[str] = []
    Fakes().run(make_config(), [platform("alpha", "", "a")], progress=messages.append)
    assert any("[2/2]" in m for m in messages)
    assert any("bytes transferred" in m for m in messages)


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        (ok_observations("https://alpha.test/"), False),
        (reset_observations("https://alpha.test/"), True),
        (Observations(), True),
        (
            Observations(http=(HTTPObservation(url="https://alpha.test/", status=403, t0=0, t=1),)),
            True,
        ),
        (
            Observations(
                http=(
                    HTTPObservation(
                        url="https://alpha.test/",
                        status=200,
                        final_url="http://warning.pta.lab/",
                        t0=0,
                        t=1,
                    ),
                )
            ),
            True,
        ),
        (
            Observations(
                http=(
                    HTTPObservation(
                        url="https://alpha.test/",
                        status=200,
                        final_url="https://www.alpha.test/",
                        t0=0,
                        t=1,
                    ),
                )
            ),
            False,
        ),
        (
            ok_observations("https://alpha.test/").model_copy(
                update={
                    "dns": (
                        DNSObservation(
                            domain="alpha.test",
                            resolver="udp:198.18.10.53",
                            transport="system",
                            answers=(DNSAnswer(rtype="A", value="198.18.102.10", ttl=1),),
                            t0=0,
                            t=1,
                        ),
                        DNSObservation(
                            domain="alpha.test",
                            resolver="doh:https://dns.control.lab/dns-query",
                            transport="doh",
                            control=True,
                            answers=(DNSAnswer(rtype="A", value=SERVER, ttl=1),),
                            t0=0,
                            t=1,
                        ),
                    )
                }
            ),
            True,
        ),
        (
            ok_observations("https://alpha.test/").model_copy(
                update={
                    "tls": (
                        TLSHandshakeObservation(
                            ip=SERVER, sni="alpha.test", cert_valid=False, t0=0, t=1
                        ),
                    )
                }
            ),
            True,
        ),
    ],
    ids=[
        "ok",
        "tls-reset",
        "nothing",
        "http-403",
        "offsite-redirect",
        "onsite-redirect",
        "dns-disagrees",
        "bad-cert",
    ],
)
def test_shows_failure(observations, expected):
    """What counts as a failure worth asking the control vantage about."""
    plan = platform("alpha", "").plans()[0]
    assert expected == shows_failure(plan, observations)


def test_budget_reservations():
    """reserve/settle/spend keep used, reserved and skipped straight."""
    budget = DataBudget(100)
    assert budget.reserve(60)
    assert not budget.reserve(50)
    assert 1 == budget.skipped
    budget.settle(60, 70)
    assert (70, 0, 30) == (budget.used, budget.reserved, budget.remaining)
    budget.spend(ok_observations("https://a.test/", body=40))
    assert -10 == budget.remaining
    with pytest.raises(ValueError):
        DataBudget(-1)


def test_http_endpoints_that_only_redirect_to_https_do_not_make_a_block_partial():
    """Every https endpoint blocked, the http ones answering 301 to https: blocked, not partial."""
    from probe.model import EndpointResult
    from probe.run import only_upgrades, platform_summary
    from tests.probe.observation_builders import http, obs

    upgrade = obs(http("http://x.com/", 301, redirects=("https://x.com/",)))
    assert only_upgrades("http://x.com/", upgrade)
    assert not only_upgrades("http://x.com/", obs(http("http://x.com/", 200)))
    assert not only_upgrades("https://x.com/", upgrade)

    def row(target: str, verdict: str) -> EndpointResult:
        return EndpointResult(
            platform="x",
            target=target,
            domain="x.com",
            verdict=verdict,  # type: ignore[arg-type]
            method="tls.reset" if verdict == "blocked" else None,
            confidence=0.9,
            evidence=(),
            throughput=None,
            measurement_id="m",
        )

    rows = [row("https://x.com/", "blocked"), row("http://x.com/", "reachable")]
    summary = platform_summary("x", rows, frozenset({"http://x.com/"}))
    assert ("blocked", False) == (summary.verdict, summary.partial)
    assert any("only redirects to https" in line for line in summary.evidence)
    assert platform_summary("x", rows).partial  # a real page on http:// is a working endpoint
    both = [*rows, row("https://t.co/", "reachable")]
    assert platform_summary("x", both, frozenset({"http://x.com/"})).partial
    fine = [row("https://x.com/", "reachable"), row("http://x.com/", "reachable")]
    assert not platform_summary("x", fine, frozenset({"http://x.com/"})).partial


def test_a_host_without_a_large_object_says_where_the_throttle_shows():
    """With throughput on, an https endpoint with no large object gets the evidence line; one
    with an object, and a blocked endpoint, do not."""
    fakes = Fakes(behaviour={"https://tp.test/reset": "reset"})
    document, _ = fakes.run(make_config(), [platform("tp", "", "big", "reset", throughput=True)])
    evidence = {r.target: r.evidence for r in document.results if r.target is not None}
    assert NO_LARGE_OBJECT_NOTE in evidence["https://tp.test/"]
    assert NO_LARGE_OBJECT_NOTE not in evidence["https://tp.test/big"]
    assert NO_LARGE_OBJECT_NOTE not in evidence["https://tp.test/reset"]
    document, _ = Fakes().run(make_config(), [platform("nt", "")])
    assert all(NO_LARGE_OBJECT_NOTE not in r.evidence for r in document.results)
