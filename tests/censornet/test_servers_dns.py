"""The lab's name servers over the wire: authoritative, forwarding resolvers, DoH and DoT."""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from censornet import topology
from censornet.pki import Pki, ensure_pki
from censornet.policy import DnsRule, Policy, PolicyWatcher, write_policy
from censornet.servers.authoritative import Authoritative
from censornet.servers.certificates import server_context
from censornet.servers.dnsserver import DnsServer
from censornet.servers.doh import doh_app
from censornet.servers.resolver import ForwardingResolver
from censornet.servers.web import WebServer

AUTH_HOST = "127.0.0.61"
RESOLVER_HOST = "127.0.0.62"


class Lab:
    """An authoritative server and a forwarding resolver on loopback, with policy files."""

    def __init__(self, state: Path, auth: DnsServer, resolver: DnsServer) -> None:
        self.state = state
        self.auth = auth
        self.resolver = resolver

    def set_policy(self, policy: Policy) -> None:
        write_policy(self.state, "inet", policy)

    async def ask(
        self,
        server: DnsServer,
        name: str,
        rdtype: str = "A",
        *,
        tcp: bool = False,
        wait: float = 2,
    ) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
        return await send(query, server.host, timeout=wait, port=server.port)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    watcher = PolicyWatcher(tmp_path, "inet")
    auth = DnsServer(
        AUTH_HOST, 0, Authoritative(topology.ZONE, lambda: watcher.current().authoritative)
    )
    await auth.start()
    forwarder = ForwardingResolver(
        AUTH_HOST, lambda: watcher.current().resolver, port=auth.port, timeout=0.5
    )
    resolver = DnsServer(RESOLVER_HOST, 0, forwarder)
    await resolver.start()
    yield Lab(tmp_path, auth, resolver)
    await resolver.close()
    await auth.close()


def _addresses(response: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in response.answer for r in rrset)


@pytest.mark.anyio
async def test_authoritative_answers_zone_a_records_with_ttl_300(lab: Lab) -> None:
    """Known names get their A records, authoritative, TTL 300, on UDP and TCP."""
    for tcp in (False, True):
        response = await lab.ask(lab.auth, "x.com", tcp=tcp)
        assert dns.rcode.NOERROR == response.rcode()
        assert sorted(topology.X_IPS) == _addresses(response)
        assert 300 == response.answer[0].ttl
        assert response.flags & dns.flags.AA


@pytest.mark.anyio
async def test_authoritative_nxdomain_and_empty_aaaa(lab: Lab) -> None:
    """Unknown names are NXDOMAIN; AAAA for a known name is NOERROR without answers."""
    assert dns.rcode.NXDOMAIN == (await lab.ask(lab.auth, "nope.example")).rcode()
    aaaa = await lab.ask(lab.auth, "www.youtube.com", "AAAA")
    assert (dns.rcode.NOERROR, []) == (aaaa.rcode(), aaaa.answer)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("action", "rcode"),
    [
        ("servfail", dns.rcode.SERVFAIL),
        ("refused", dns.rcode.REFUSED),
        ("nxdomain", dns.rcode.NXDOMAIN),
    ],
)
async def test_authoritative_policy_rcodes(lab: Lab, action: str, rcode: dns.rcode.Rcode) -> None:
    """An authoritative rule breaks the covered names only."""
    lab.set_policy(Policy(authoritative=(DnsRule(suffix="x.com", action=action),)))
    assert rcode == (await lab.ask(lab.auth, "api.x.com")).rcode()
    assert dns.rcode.NOERROR == (await lab.ask(lab.auth, "example.org")).rcode()


@pytest.mark.anyio
async def test_authoritative_drop_answer_and_delay(lab: Lab) -> None:
    """drop never answers; answer replaces the records; delay_ms holds the answer back."""
    lab.set_policy(
        Policy(
            authoritative=(
                DnsRule(suffix="twitter.com", action="drop"),
                DnsRule(suffix="x.com", action="answer", answer=("198.18.102.10",)),
                DnsRule(suffix="example.com", action="answer", delay_ms=300),
            )
        )
    )
    with pytest.raises(dns.exception.Timeout):
        await lab.ask(lab.auth, "twitter.com", wait=0.5)
    assert ["198.18.102.10"] == _addresses(await lab.ask(lab.auth, "x.com"))
    start = time.monotonic()
    delayed = await lab.ask(lab.auth, "example.com")
    assert time.monotonic() - start >= 0.3
    assert [topology.CANARY_IPS[1]] == _addresses(delayed)


@pytest.mark.anyio
async def test_resolver_forwards_over_the_wire_and_passes_rcodes(lab: Lab) -> None:
    """The resolver's answers come from the authoritative server, rcode included."""
    response = await lab.ask(lab.resolver, "pbs.twimg.com")
    assert sorted(topology.X_MEDIA_IPS) == _addresses(response)
    assert response.flags & dns.flags.RA and not response.flags & dns.flags.AA
    assert dns.rcode.NXDOMAIN == (await lab.ask(lab.resolver, "nope.example")).rcode()
    lab.set_policy(Policy(authoritative=(DnsRule(suffix="facebook.com", action="servfail"),)))
    assert dns.rcode.SERVFAIL == (await lab.ask(lab.resolver, "facebook.com", tcp=True)).rcode()


@pytest.mark.anyio
async def test_resolver_gives_servfail_when_upstream_is_silent(lab: Lab) -> None:
    """An authoritative server that drops makes the resolver answer SERVFAIL."""
    lab.set_policy(Policy(authoritative=(DnsRule(suffix="t.me", action="drop"),)))
    assert dns.rcode.SERVFAIL == (await lab.ask(lab.resolver, "t.me")).rcode()


@pytest.mark.anyio
async def test_resolver_policy_actions(lab: Lab) -> None:
    """Resolver rules: nxdomain, refused, drop, answer replacement; others resolve."""
    lab.set_policy(
        Policy(
            resolver=(
                DnsRule(suffix="x.com", action="nxdomain"),
                DnsRule(suffix="twimg.com", action="refused"),
                DnsRule(suffix="t.co", action="drop"),
                DnsRule(suffix="twitter.com", action="answer", answer=("10.10.34.34",)),
            )
        )
    )
    assert dns.rcode.NXDOMAIN == (await lab.ask(lab.resolver, "www.x.com")).rcode()
    assert dns.rcode.REFUSED == (await lab.ask(lab.resolver, "abs.twimg.com")).rcode()
    with pytest.raises(dns.exception.Timeout):
        await lab.ask(lab.resolver, "t.co", wait=0.5)
    assert ["10.10.34.34"] == _addresses(await lab.ask(lab.resolver, "twitter.com"))
    assert [topology.CANARY_IPS[0]] == _addresses(await lab.ask(lab.resolver, "example.org"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


@pytest.mark.anyio
async def test_doh_get_and_post(lab: Lab, pki: Pki) -> None:
    """RFC 8484 GET ?dns= and POST application/dns-message, validated against the lab CA."""
    context = server_context(pki.control_cert, pki.key("control"))
    doh = WebServer(["127.0.0.63"], 0, doh_app(_resolver_of(lab)), certificates=lambda _: context)
    await doh.start()
    try:
        client_context = ssl.create_default_context(cafile=pki.lab_ca)
        async with httpx.AsyncClient(verify=client_context) as client:
            url = f"https://127.0.0.63:{doh.port}/dns-query"
            ext = {"sni_hostname": topology.CONTROL_RESOLVER_NAME}
            wire = dns.message.make_query("www.instagram.com", "A").to_wire()
            encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
            got = await client.get(url, params={"dns": encoded}, extensions=ext)
            assert "application/dns-message" == got.headers["content-type"]
            assert ["198.18.100.42"] == _addresses(dns.message.from_wire(got.content))
            posted = await client.post(
                url,
                content=wire,
                headers={"content-type": "application/dns-message"},
                extensions=ext,
            )
            assert ["198.18.100.42"] == _addresses(dns.message.from_wire(posted.content))
            assert (
                404 == (await client.get(url.replace("dns-query", "x"), extensions=ext)).status_code
            )
    finally:
        await doh.close()


@pytest.mark.anyio
async def test_dot_answers_over_tls(lab: Lab, pki: Pki) -> None:
    """DNS-over-TLS with the control certificate; queries validate for the control name."""
    context = server_context(pki.control_cert, pki.key("control"), alpn=("dot",))
    dot = DnsServer("127.0.0.64", 0, _resolver_of(lab), tls=context)
    await dot.start()
    try:
        client_context = ssl.create_default_context(cafile=pki.lab_ca)
        query = dns.message.make_query("signal.org", "A")
        response = await dns.asyncquery.tls(
            query,
            "127.0.0.64",
            port=dot.port,
            timeout=3,
            ssl_context=client_context,
            server_hostname=topology.CONTROL_RESOLVER_NAME,
        )
        assert ["198.18.100.80"] == _addresses(response)
    finally:
        await dot.close()


def _resolver_of(lab: Lab) -> ForwardingResolver:
    return ForwardingResolver(AUTH_HOST, lambda: (), port=lab.auth.port, timeout=0.5)
