"""measure_endpoint / measure_canary / measure_many against loopback servers and a test DNS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from probe.flows.plan import EndpointPlan, MeasureSettings, Timeouts
from probe.flows.web import measure_canary, measure_endpoint, measure_many
from probe.model.failures import Failure
from tests.probe.steps.servers import (
    DNSServer,
    HTTPServer,
    Request,
    Zone,
    blackhole,
    respond,
    server_context,
)

pytestmark = pytest.mark.anyio

PAGE = b"<html><title>X home</title></html>"


async def home(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, PAGE, {"content-type": "text/html"})


async def big(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, b"z" * 300_000)


async def sink(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, b"ok")


ROUTES = {"/": home, "/big": big, "/up": sink}


@dataclass
class World:
    system: DNSServer
    control: DNSServer
    https: HTTPServer
    http: HTTPServer
    settings: MeasureSettings


@pytest.fixture
async def world(ca: trustme.CA, ca_file: Path) -> AsyncIterator[World]:
    system = await DNSServer(Zone(addresses={"x.test": ["127.0.0.1"]})).start()
    control = await DNSServer(Zone(addresses={"x.test": ["127.0.0.1"]})).start()
    https = await HTTPServer(ROUTES).start(tls=server_context(ca, "x.test", "example.test"))
    plain = await HTTPServer(ROUTES).start()
    settings = MeasureSettings(
        system_resolver=f"127.0.0.1:{system.port}",
        control_resolvers=(f"udp:127.0.0.1:{control.port}",),
        ca_file=ca_file,
        benign_sni="example.test",
        timeouts=Timeouts(
            dns=1.5, tcp_connect=1.0, tls_handshake=1.0, http_total=2.0, throughput=1.5
        ),
        throughput_bytes=100_000,
        upload_bytes=50_000,
    )
    yield World(system, control, https, plain, settings)
    for server in (system, control, https, plain):
        server.close()


def _plan(port: int, scheme: str = "https") -> EndpointPlan:
    base = f"{scheme}://x.test:{port}"
    return EndpointPlan(
        platform="x",
        url=f"{base}/",
        domain="x.test",
        platform_domains=("x.test",),
        throughput_url=f"{base}/big",
        upload_url=f"{base}/up",
    )


async def test_reachable_https_endpoint(world: World) -> None:
    """Every step succeeds once, with the benign-SNI and same-path controls beside them."""
    obs = await measure_endpoint(_plan(world.https.port), world.settings)
    assert [(o.transport, o.control, o.addresses) for o in obs.dns if o.qtype == "A"] == [
        ("system", False, ("127.0.0.1",)),
        ("udp", True, ("127.0.0.1",)),
    ]
    # Every resolver is asked for AAAA too; this name has none (NOERROR without records).
    assert [(o.transport, o.failure) for o in obs.dns if o.qtype == "AAAA"][::2] == [
        ("system", Failure.DNS_NO_ANSWER),
        ("udp", Failure.DNS_NO_ANSWER),
    ]
    assert [(o.ip, o.failure) for o in obs.tcp] == [("127.0.0.1", None)]
    assert [(o.sni, o.control, o.cert_valid) for o in obs.tls] == [
        ("x.test", False, True),
        ("example.test", True, True),
    ]
    assert [(o.status, o.title, o.ip) for o in obs.http] == [(200, "X home", "127.0.0.1")]
    moved = {(o.direction, o.control): o for o in obs.throughput}
    assert {("down", False), ("down", True), ("up", False), ("up", True)} == set(moved)
    assert all(o.completed and o.failure is None for o in obs.throughput)
    assert "example.test" == moved[("down", True)].sni
    assert 100_000 <= moved[("down", False)].bytes


async def test_connections_start_on_the_first_answer_and_late_answers_are_kept(
    world: World,
) -> None:
    """An injected answer and the real one: the connect starts once the first has come, while
    the late window is open, and the observation still holds the late answer."""
    world.system.zone.injected["x.test"] = ["127.0.0.1"]  # forged first, the real one late
    world.system.zone.addresses["x.test"] = ["127.0.0.3"]
    obs = await measure_endpoint(_plan(world.https.port), world.settings, with_throughput=False)
    system = next(o for o in obs.dns if not o.control and o.qtype == "A")
    assert ("127.0.0.1",) == system.addresses
    assert (("127.0.0.3",),) == system.late_answers
    first_connect = min(c.t0 for c in obs.tcp)
    assert first_connect < system.t  # the late window was still open
    assert 200 == obs.http[0].status


async def test_without_throughput(world: World) -> None:
    """with_throughput=False skips the transfers."""
    obs = await measure_endpoint(_plan(world.https.port), world.settings, with_throughput=False)
    assert () == obs.throughput
    assert 1 == len(obs.http)


async def test_dns_lie_tests_the_control_address_too(world: World) -> None:
    """The system resolver lies; the control's address is connected too and used for HTTP."""
    world.system.zone.addresses["x.test"] = ["127.0.0.2"]
    obs = await measure_endpoint(_plan(world.https.port), world.settings, with_throughput=False)
    tried = [(o.ip, o.failure) for o in obs.tcp]
    assert [
        ("127.0.0.2", Failure.CONNECTION_REFUSED),
        ("127.0.0.2", Failure.CONNECTION_REFUSED),  # retried on a fresh connection
        ("127.0.0.1", None),
    ] == tried
    assert "127.0.0.1" == obs.http[0].ip
    assert 200 == obs.http[0].status


@pytest.mark.slow
async def test_nxdomain_is_retried_and_the_control_answer_used(world: World) -> None:
    """A failing system lookup is tried twice; the control resolver's address is still measured."""
    del world.system.zone.addresses["x.test"]
    obs = await measure_endpoint(_plan(world.https.port), world.settings, with_throughput=False)
    system = [o for o in obs.dns if not o.control and o.qtype == "A"]
    assert [Failure.DNS_NXDOMAIN, Failure.DNS_NXDOMAIN] == [o.failure for o in system]
    assert 200 == obs.http[0].status


@pytest.mark.slow
async def test_blackholed_endpoint_ends_within_its_timeout(world: World) -> None:
    """SYNs unanswered: every try times out, no HTTP, and the tries share one connect timeout.

    The tries split the stage's budget (the first gets half of it) instead of each taking a whole
    timeout; the wall-clock figure (timeout + 1 s) is measured by bench/bench_probe.py.
    """
    listener, fillers, port = blackhole()
    try:
        obs = await measure_endpoint(_plan(port), world.settings)
    finally:
        for sock in [listener, *fillers]:
            sock.close()
    budget = world.settings.timeouts.tcp_connect
    first, second = obs.tcp
    assert [Failure.TIMEOUT, Failure.TIMEOUT] == [first.failure, second.failure]
    assert first.t - first.t0 < 0.75 * budget  # half the budget, not all of it
    assert second.t0 >= first.t  # a fresh connection after the first try gave up
    assert all(o.failure == Failure.TIMEOUT for o in obs.tls)
    assert () == obs.http
    assert () == obs.throughput


async def test_cleartext_endpoint_control_uses_the_benign_host(world: World) -> None:
    """Over http there is no TLS; the control transfer sends the benign name as Host."""
    obs = await measure_endpoint(_plan(world.http.port, "http"), world.settings)
    assert () == obs.tls
    assert 200 == obs.http[0].status
    assert f"example.test:{world.http.port}" in world.http.hosts
    assert all(o.completed for o in obs.throughput)


async def test_canary(world: World) -> None:
    """A canary gets DNS, TCP, TLS (no benign control), HTTP, and a download when asked."""
    url = f"https://x.test:{world.https.port}/big"
    obs = await measure_canary(url, world.settings, with_throughput=True)
    assert [False] == [o.control for o in obs.tls]
    assert 200 == obs.http[0].status
    assert [(False, True)] == [(o.control, o.completed) for o in obs.throughput]


@pytest.mark.slow
async def test_measure_many(world: World) -> None:
    """Several plans are measured, keyed by URL."""
    plans = [_plan(world.https.port), _plan(world.http.port, "http")]
    settings = MeasureSettings(**{**world.settings.__dict__, "concurrency": 1})
    found = await measure_many(plans, settings)
    assert {p.url for p in plans} == set(found)
    assert all(o.http[0].status == 200 for o in found.values())


@pytest.mark.parametrize("ipv6", [True, False])
async def test_both_families_are_measured_when_the_vantage_has_ipv6(
    ca: trustme.CA, ca_file: Path, ipv6: bool
) -> None:
    """A name with A and AAAA records: TCP, TLS and a page over each family (with IPv6 on);
    the transfers over the first family only. Without IPv6 no connection goes to ::1."""
    zone = Zone(addresses={"x.test": ["127.0.0.1", "::1"]})
    system, control = await DNSServer(zone).start(), await DNSServer(zone).start()
    https = await HTTPServer(ROUTES).start(
        tls=server_context(ca, "x.test", "example.test"), ipv6=True
    )
    settings = MeasureSettings(
        system_resolver=f"127.0.0.1:{system.port}",
        control_resolvers=(f"udp:127.0.0.1:{control.port}",),
        ca_file=ca_file,
        benign_sni="example.test",
        timeouts=Timeouts(dns=1.5, tcp_connect=1.0, tls_handshake=1.0, http_total=2.0),
        throughput_bytes=50_000,
        ipv6=ipv6,
    )
    try:
        obs = await measure_endpoint(_plan(https.port), settings)
    finally:
        for server in (system, control, https):
            server.close()
    assert {(o.qtype, o.addresses) for o in obs.dns} == {("A", ("127.0.0.1",)), ("AAAA", ("::1",))}
    ips = ["127.0.0.1", "::1"] if ipv6 else ["127.0.0.1"]
    assert sorted(o.ip for o in obs.tcp if o.failure is None) == ips
    assert sorted(o.ip for o in obs.tls if not o.control and o.failure is None) == ips
    assert sorted((o.ip, o.status) for o in obs.http) == [(ip, 200) for ip in ips]
    assert {o.ip for o in obs.throughput} == {"127.0.0.1"}
