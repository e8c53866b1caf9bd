"""dns.resolve against a local DNS server over UDP, TCP, DoT and DoH."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import pytest
import trustme

from probe.model.failures import Failure
from probe.model.observations import DNSObservation
from probe.net.clock import Clock, deadline_in
from probe.steps import dns as dns_step
from tests.probe.steps.servers import DNSServer, HTTPServer, Request, Zone, respond, server_context

pytestmark = pytest.mark.anyio

ZONE = Zone(
    addresses={"x.test": ["198.18.2.10"], "both.test": ["198.18.2.11", "2001:db8::1"]},
    rcodes={"fail.test": dns.rcode.SERVFAIL, "refuse.test": dns.rcode.REFUSED},
    silent={"silent.test"},
    injected={"inject.test": ["10.10.34.34"]},
)
ZONE.addresses["inject.test"] = ["198.18.2.12"]
ZONE.addresses["empty.test"] = []


@pytest.fixture
async def server(ca: trustme.CA) -> AsyncIterator[DNSServer]:
    server = await DNSServer(ZONE).start(tls=server_context(ca, "dns.test", "127.0.0.1"))
    yield server
    server.close()


async def _resolve(domain: str, spec: str, **kwargs: Any) -> DNSObservation:
    resolver = dns_step.parse_resolver(spec)
    return await dns_step.resolve(
        domain, resolver, deadline=deadline_in(1.0), clock=Clock(), late_window=0.2, **kwargs
    )


async def test_udp_answer_with_ttl(server: DNSServer) -> None:
    """A UDP query records rcode, the answer and its TTL, with no late answers."""
    obs = await _resolve("x.test", f"udp:127.0.0.1:{server.port}")
    assert obs.failure is None
    assert "NOERROR" == obs.rcode
    assert ("198.18.2.10",) == obs.addresses
    assert 300 == obs.answers[0].ttl
    assert () == obs.late_answers
    assert f"udp:127.0.0.1:{server.port}" == obs.resolver
    assert obs.control
    assert 0 <= obs.t0 <= obs.t


@pytest.mark.parametrize(
    ("domain", "failure", "rcode"),
    [
        ("nowhere.test", Failure.DNS_NXDOMAIN, "NXDOMAIN"),
        ("fail.test", Failure.DNS_SERVFAIL, "SERVFAIL"),
        ("refuse.test", Failure.DNS_REFUSED, "REFUSED"),
        ("empty.test", Failure.DNS_NO_ANSWER, "NOERROR"),
    ],
)
async def test_error_rcodes(server: DNSServer, domain: str, failure: Failure, rcode: str) -> None:
    """Error rcodes (and an empty NOERROR) become failures, the rcode kept."""
    obs = await _resolve(domain, f"udp:127.0.0.1:{server.port}")
    assert failure == obs.failure
    assert rcode == obs.rcode


@pytest.mark.slow
async def test_silence_is_a_timeout(server: DNSServer) -> None:
    """No response before the deadline is generic_timeout_error with no rcode."""
    obs = await _resolve("silent.test", f"udp:127.0.0.1:{server.port}")
    assert Failure.TIMEOUT == obs.failure
    assert obs.rcode is None
    assert 0.9 < obs.t - obs.t0 < 1.5


async def test_injected_response_keeps_the_late_answer(server: DNSServer) -> None:
    """On-path injection: the forged answer comes first, the real one is a late answer."""
    obs = await _resolve("inject.test", f"udp:127.0.0.1:{server.port}")
    assert ("10.10.34.34",) == obs.addresses
    assert (("198.18.2.12",),) == obs.late_answers


async def test_the_first_answer_is_heard_before_the_late_window_closes(server: DNSServer) -> None:
    """``early`` gets the first response while the late window is still open; the final
    observation adds the late answer, the first one unchanged."""
    heard: list[DNSObservation] = []
    first = asyncio.Event()

    def early(obs: DNSObservation) -> None:
        heard.append(obs)
        first.set()

    task = asyncio.ensure_future(
        _resolve("inject.test", f"udp:127.0.0.1:{server.port}", early=early)
    )
    await first.wait()
    assert not task.done()  # still listening for late answers
    assert ("10.10.34.34",) == heard[0].addresses
    assert () == heard[0].late_answers
    obs = await task
    assert (("198.18.2.12",),) == obs.late_answers
    assert heard[0].answers == obs.answers


async def test_refused_port_over_udp() -> None:
    """ICMP port unreachable on a UDP query is connection_refused."""
    from tests.probe.steps.servers import free_port

    obs = await _resolve("x.test", f"udp:127.0.0.1:{free_port()}")
    assert Failure.CONNECTION_REFUSED == obs.failure


async def test_aaaa(server: DNSServer) -> None:
    """AAAA queries return the IPv6 answers."""
    obs = await _resolve("both.test", f"udp:127.0.0.1:{server.port}", qtype="AAAA")
    assert ("2001:db8::1",) == obs.addresses


async def test_tcp(server: DNSServer) -> None:
    """DNS over TCP."""
    obs = await _resolve("x.test", f"tcp:127.0.0.1:{server.tcp_port}")
    assert ("198.18.2.10",) == obs.addresses
    assert "tcp" == obs.transport


async def test_dot_trusts_the_ca_file(server: DNSServer, ca_file: Path) -> None:
    """DoT verifies the resolver's certificate against the CA file (for its IP or its name)."""
    ok = await _resolve("x.test", f"tls:127.0.0.1:{server.tls_port}", ca_file=ca_file)
    assert ("198.18.2.10",) == ok.addresses
    named = await _resolve("x.test", f"tls:127.0.0.1:{server.tls_port}#dns.test", ca_file=ca_file)
    assert ("198.18.2.10",) == named.addresses
    untrusted = await _resolve("x.test", f"tls:127.0.0.1:{server.tls_port}")
    assert Failure.SSL_UNKNOWN_AUTHORITY == untrusted.failure


async def test_doh_with_bootstrap_address(ca: trustme.CA, ca_file: Path) -> None:
    """DoH to https://dns.test:PORT/dns-query#127.0.0.1 needs no DNS and checks dns.test."""

    async def dns_query(request: Request, writer: asyncio.StreamWriter) -> None:
        reply = ZONE.respond(request.body)[-1]
        respond(writer, 200, reply, {"content-type": "application/dns-message"})

    doh = await HTTPServer({"/dns-query": dns_query}).start(tls=server_context(ca, "dns.test"))
    try:
        url = f"https://dns.test:{doh.port}/dns-query"
        obs = await _resolve("x.test", f"{url}#127.0.0.1", ca_file=ca_file)
        assert obs.failure is None
        assert ("198.18.2.10",) == obs.addresses
        assert f"doh:{url}" == obs.resolver
        assert ["dns.test"] == doh.snis
        nx = await _resolve("nowhere.test", f"{url}#127.0.0.1", ca_file=ca_file)
        assert Failure.DNS_NXDOMAIN == nx.failure
    finally:
        doh.close()


async def test_system_resolver_from_resolv_conf(server: DNSServer, tmp_path: Path) -> None:
    """The system resolver is resolv.conf's first nameserver, queried over UDP."""
    conf = tmp_path / "resolv.conf"
    conf.write_text("# lab\nsearch lab\nnameserver 127.0.0.1\nnameserver 198.18.0.1\n")
    resolver = dns_step.system_resolver(resolv_conf=conf)
    assert ("system", "127.0.0.1", 53) == (resolver.transport, resolver.ip, resolver.port)
    assert "system:127.0.0.1" == resolver.label
    assert "system:127.0.0.1" == dns_step.system_resolver(str(conf)).label
    configured = dns_step.system_resolver(f"127.0.0.1:{server.port}")
    obs = await dns_step.resolve("x.test", configured, deadline=deadline_in(1), clock=Clock())
    assert ("198.18.2.10",) == obs.addresses
    assert not obs.control
    assert "system" == obs.transport


@pytest.mark.parametrize(
    ("spec", "label"),
    [
        ("udp:198.18.103.53", "udp:198.18.103.53"),
        ("tcp:[::1]:5353", "tcp:[::1]:5353"),
        ("tls:198.18.103.53#dns.control.lab", "tls:198.18.103.53"),
        (
            "https://dns.control.lab/dns-query#198.18.103.53",
            "doh:https://dns.control.lab/dns-query",
        ),
    ],
)
def test_parse_resolver(spec: str, label: str) -> None:
    """Control resolver strings parse and label as the observations name them."""
    assert label == dns_step.parse_resolver(spec).label


@pytest.mark.parametrize(
    "spec", ["dns.google", "udp:dns.google", "https://x/#notanip", "ftp:1.2.3.4"]
)
def test_parse_resolver_rejects(spec: str) -> None:
    """Malformed resolver strings are configuration errors."""
    with pytest.raises(ValueError):
        dns_step.parse_resolver(spec)


def test_zone_sanity() -> None:
    """The fake server answers injected names twice (guards the injection test itself)."""
    wire = dns.message.make_query("inject.test", "A").to_wire()
    assert 2 == len(ZONE.respond(wire))
