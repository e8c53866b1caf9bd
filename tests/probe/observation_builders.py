"""Builders for recorded-style observations: the vocabulary of the classifier scenario table.

Addresses follow the lab's plan (censornet/topology.py): the platform at 198.18.100.10/.11, a
CDN-style alternative at .12, canaries at 198.18.101.x, the blockpage server at 198.18.102.10.
"""

from __future__ import annotations

from collections.abc import Iterable

from probe.flows.plan import EndpointPlan
from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.observations import (
    Certificate,
    DNSAnswer,
    DNSObservation,
    HTTPObservation,
    TCPConnectObservation,
    ThroughputObservation,
    TLSHandshakeObservation,
)

X_IP, X_IP2, CDN_IP = "198.18.100.10", "198.18.100.11", "198.18.100.12"
CANARY_IP, BLOCKPAGE_IP, MITM_IP = "198.18.101.10", "198.18.102.10", "198.18.102.20"
ISP_RESOLVER = "system:198.18.10.53"
CONTROL_RESOLVER = "doh:https://dns.control.lab/dns-query"
X_TITLE = "X. It's what's happening / X"
X_LENGTH = 2400
X_DOMAINS = ("x.com", "twitter.com", "twimg.com", "t.co")

TWITTER = EndpointPlan(
    platform="x",
    url="https://twitter.com/",
    domain="twitter.com",
    platform_domains=X_DOMAINS,
    throughput_url="https://twitter.com/large",
    upload_url="https://twitter.com/upload",
)
X_HTTP = EndpointPlan(platform="x", url="http://x.com/", domain="x.com", platform_domains=X_DOMAINS)

Item = (
    DNSObservation
    | TCPConnectObservation
    | TLSHandshakeObservation
    | HTTPObservation
    | ThroughputObservation
)

_RCODES = {
    None: "NOERROR",
    Failure.DNS_NO_ANSWER: "NOERROR",
    Failure.DNS_NXDOMAIN: "NXDOMAIN",
    Failure.DNS_SERVFAIL: "SERVFAIL",
    Failure.DNS_REFUSED: "REFUSED",
}


def dns(
    domain: str,
    *addresses: str,
    resolver: str = ISP_RESOLVER,
    control: bool = False,
    failure: Failure | None = None,
    qtype: str = "A",
    late: tuple[tuple[str, ...], ...] = (),
) -> DNSObservation:
    """One DNS query and its first response (``late`` holds later, duplicate responses)."""
    rtype = "AAAA" if qtype == "AAAA" else "A"
    return DNSObservation(
        domain=domain,
        qtype=rtype,
        resolver=resolver,
        transport="doh" if resolver.startswith("doh:") else "system",
        control=control,
        rcode=_RCODES.get(failure),
        answers=tuple(DNSAnswer(rtype=rtype, value=a, ttl=300) for a in addresses),
        late_answers=late,
        failure=failure,
        t0=0.0,
        t=0.004 if failure is not Failure.TIMEOUT else 3.0,
    )


def control_dns(domain: str, *addresses: str, failure: Failure | None = None) -> DNSObservation:
    """A query through the control resolver (DoH)."""
    return dns(domain, *addresses, resolver=CONTROL_RESOLVER, control=True, failure=failure)


def tcp(ip: str, port: int = 443, failure: Failure | None = None) -> TCPConnectObservation:
    """One TCP connect."""
    took = 4.0 if failure is Failure.TIMEOUT else 0.002
    return TCPConnectObservation(ip=ip, port=port, failure=failure, t0=0.01, t=0.01 + took)


def tls(
    ip: str,
    sni: str = "twitter.com",
    *,
    control: bool = False,
    failure: Failure | None = None,
    valid: bool = True,
    issuer: str = "blockprobe lab CA",
    port: int = 443,
) -> TLSHandshakeObservation:
    """One TLS handshake; ``valid`` is whether the certificate validated for ``sni``."""
    took = 4.0 if failure is Failure.TIMEOUT else 0.003
    certificate = Certificate(subject=f"CN={sni}", issuer=f"CN={issuer}", sans=(sni,))
    handshake_done = failure is None
    return TLSHandshakeObservation(
        ip=ip,
        port=port,
        sni=sni,
        control=control,
        failure=failure,
        tls_version="TLSv1.3" if handshake_done else None,
        cert_valid=valid if handshake_done else None,
        certificate=certificate if handshake_done else None,
        t0=0.02,
        t=0.02 + took,
    )


def benign(ip: str, failure: Failure | None = None) -> TLSHandshakeObservation:
    """The control handshake: the same address with the benign SNI example.org."""
    return tls(ip, "example.org", control=True, failure=failure)


def benign_answer(ip: str, answer: str) -> TLSHandshakeObservation:
    """The benign-SNI control as a real server answers a name it does not host, as the TLS step
    records it: ``default_cert`` (nginx's default server: its certificate, for another name),
    ``own_cert`` (the platform's certificate for any name), ``alert:NAME`` (a TLS alert such as
    unrecognized_name or handshake_failure)."""
    if answer.startswith("alert:"):
        return TLSHandshakeObservation(
            ip=ip,
            sni="example.org",
            control=True,
            failure=Failure.SSL_FAILED_HANDSHAKE,
            alert=answer.removeprefix("alert:"),
            received=7,
            t0=0.02,
            t=0.023,
        )
    sans = {"default_cert": ("default.lab",), "own_cert": ("twitter.com", "*.twitter.com")}[answer]
    return TLSHandshakeObservation(
        ip=ip,
        sni="example.org",
        control=True,
        failure=Failure.SSL_INVALID_HOSTNAME,
        cert_valid=False,
        certificate=Certificate(subject=f"CN={sans[0]}", issuer="CN=blockprobe lab CA", sans=sans),
        received=2400,
        t0=0.02,
        t=0.026,
    )


def http(
    url: str = "https://twitter.com/",
    status: int | None = 200,
    *,
    ip: str | None = X_IP,
    title: str | None = X_TITLE,
    length: int | None = X_LENGTH,
    failure: Failure | None = None,
    redirects: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> HTTPObservation:
    """One HTTP fetch; a failed one has no status, title or length."""
    ok = failure is None
    return HTTPObservation(
        url=url,
        ip=ip,
        status=status if ok else None,
        headers=headers or {},
        redirects=redirects,
        final_url=url if ok and not redirects else (redirects[-1] if ok else None),
        title=title if ok else None,
        body_length=length if ok else None,
        failure=failure,
        t0=0.03,
        t=0.03 + (8.0 if failure is Failure.TIMEOUT else 0.012),
    )


def transfer(
    kbps: float,
    *,
    control: bool = False,
    direction: str = "down",
    seconds: float = 2.0,
    ip: str = X_IP,
    sni: str | None = None,
    pattern: str = "steady",
    stall_after: int | None = None,
    step: float = 0.1,
) -> ThroughputObservation:
    """A budgeted transfer sampled every ``step`` s.

    ``pattern`` is "steady" (a plateau), "bursty" (nothing, then everything at once) or
    "stall" (``stall_after`` bytes arrive, then nothing until the time budget runs out).
    """
    rate = kbps * 1000 / 8  # bytes per second
    count = round(seconds / step)
    samples: list[tuple[float, int]] = []
    for i in range(1, count + 1):
        t = round(i * step, 3)
        if pattern == "bursty":
            moved = int(rate * seconds) if t >= seconds * 0.6 else int(rate * step)
        else:
            moved = int(rate * t)
        if stall_after is not None:
            moved = min(moved, stall_after)
        samples.append((t, moved))
    total = samples[-1][1] if samples else 0
    stalled = stall_after is not None
    return ThroughputObservation(
        url="https://example.org/large" if control else "https://twitter.com/large",
        direction="up" if direction == "up" else "down",
        ip=ip,
        sni=sni or ("example.org" if control else "twitter.com"),
        control=control,
        bytes=total,
        seconds=seconds,
        ttfb=0.05 if total else None,
        samples=tuple(samples),
        completed=not stalled,
        failure=Failure.TIMEOUT if stalled else None,
        t0=1.0,
        t=1.0 + seconds,
    )


def twice(item: Item) -> tuple[Item, Item]:
    """The same step tried twice (a failure and its retry on a fresh connection)."""
    return (item, item)


def obs(*items: Item | Iterable[Item]) -> Observations:
    """Observations from steps (or groups of steps), sorted into their stages."""
    flat: list[Item] = []
    for item in items:
        if isinstance(item, tuple | list):
            flat.extend(item)
        else:
            flat.append(item)  # type: ignore[arg-type]
    return Observations(
        dns=tuple(i for i in flat if isinstance(i, DNSObservation)),
        tcp=tuple(i for i in flat if isinstance(i, TCPConnectObservation)),
        tls=tuple(i for i in flat if isinstance(i, TLSHandshakeObservation)),
        http=tuple(i for i in flat if isinstance(i, HTTPObservation)),
        throughput=tuple(i for i in flat if isinstance(i, ThroughputObservation)),
    )


def resolved(domain: str = "twitter.com", *addresses: str) -> tuple[Item, ...]:
    """System and control resolver agreeing on ``addresses`` (the platform's by default)."""
    addrs = addresses or (X_IP,)
    return (dns(domain, *addrs), control_dns(domain, *addrs))


def x_clean(ip: str = X_IP) -> tuple[Item, ...]:
    """https://twitter.com/ working end to end through ``ip``, with its controls."""
    return (*resolved("twitter.com", ip), tcp(ip), tls(ip), benign(ip), http(ip=ip))


def x_http_clean() -> tuple[Item, ...]:
    """http://x.com/ working end to end."""
    return (*resolved("x.com"), tcp(X_IP, 80), http("http://x.com/"))


def canaries_ok() -> dict[str, Observations]:
    """An unrelated site that works through the same path."""
    return {
        "example.org": obs(
            dns("example.org", CANARY_IP),
            tcp(CANARY_IP),
            tls(CANARY_IP, "example.org"),
            http("https://example.org/", ip=CANARY_IP, title="Example Domain", length=1256),
        )
    }


CANARY6 = "fd00:198:18:101::10"


def canaries_both_families() -> dict[str, Observations]:
    """example.org working through the same path over IPv4 and IPv6."""
    v4 = canaries_ok()["example.org"]
    v6 = obs(
        dns("example.org", CANARY6, qtype="AAAA"),
        tcp(CANARY6),
        tls(CANARY6, "example.org"),
        http("https://example.org/", ip=CANARY6, title="Example Domain", length=1256),
    )
    both = Observations(
        dns=v4.dns + v6.dns, tcp=v4.tcp + v6.tcp, tls=v4.tls + v6.tls, http=v4.http + v6.http
    )
    return {"example.org": both}


def canaries_down(failure: Failure = Failure.TIMEOUT) -> dict[str, Observations]:
    """Unrelated sites that fail through the same path too."""
    return {
        name: obs(dns(name, ip), twice(tcp(ip, failure=failure)))
        for name, ip in (("example.org", CANARY_IP), ("example.com", "198.18.101.11"))
    }


def vantage_ok(domain: str = "twitter.com", url: str = "https://twitter.com/") -> Observations:
    """The control vantage reaching the endpoint."""
    port = 443 if url.startswith("https") else 80
    handshake = (tls(X_IP, domain),) if port == 443 else ()
    return obs(dns(domain, X_IP, resolver="system:helper"), tcp(X_IP, port), handshake, http(url))
