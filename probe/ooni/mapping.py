"""One OONI Web Connectivity measurement as our observations (``Imported``).

What comes from where (versions 0.0.1 to 0.5.x): the system resolver's lookups (``getaddrinfo``,
``system`` or no engine) are this vantage's DNS; DoH lookups are the control resolver (an error
answer from it is an answer); lookups through a cleartext public resolver (``udp``) are dropped,
as a censor can spoof them as well as the system resolver's. ``tcp_connect`` and
``tls_handshakes`` map one to one; ``requests`` (one entry per redirect hop, newest first) fold
into one fetch as our HTTP step records it. The test helper's answers (``control``) are the
control vantage; a measurement whose control failed has none. OONI keeps no benign-SNI handshake,
no control transfer and no canary: those exist only in our own export (``x_blockprobe_*``).
"""

from __future__ import annotations

import base64
import html
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from probe.fingerprints.blockpages import body_fingerprint, differences
from probe.flows.plan import EndpointPlan
from probe.model.failures import Failure
from probe.model.measurement import Observations
from probe.model.observations import (
    Certificate,
    DNSAnswer,
    DNSObservation,
    DnsTransport,
    HTTPObservation,
    TCPConnectObservation,
    ThroughputObservation,
    TLSHandshakeObservation,
)
from probe.ooni.failures import failure_of
from probe.platforms import BUILTIN_DIR, Platform, load_platforms

SYSTEM_ENGINES = frozenset({None, "", "getaddrinfo", "system", "golang_net_resolver"})
CONTROL_TAG = "blockprobe_control_resolver"  # our export's control resolver over udp/tcp/dot
FETCH_TAG = "blockprobe_fetch="  # our export: which fetch (try) a redirect hop belongs to
TEST_HELPER = "system:test-helper"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_RCODES: dict[Failure | None, str] = {
    None: "NOERROR",
    Failure.DNS_NO_ANSWER: "NOERROR",
    Failure.DNS_NXDOMAIN: "NXDOMAIN",
    Failure.DNS_SERVFAIL: "SERVFAIL",
    Failure.DNS_REFUSED: "REFUSED",
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Json = dict[str, Any]


class MappingError(ValueError):
    """A measurement that cannot be read as Web Connectivity (no input, no URL)."""


@dataclass(frozen=True)
class OONIResult:
    """What OONI's probe concluded: ``blocking`` (a string, False or None) and ``accessible``."""

    blocking: str | bool | None
    accessible: bool | None


@dataclass(frozen=True)
class Imported:
    """One OONI measurement as the classifier's inputs, with what OONI said about it."""

    source: str
    measurement_id: str
    report_id: str
    country: str | None
    asn: str | None
    network: str | None
    software: str
    test_version: str
    plan: EndpointPlan
    local: Observations
    control: Observations | None
    canaries: Mapping[str, Observations]
    ooni: OONIResult
    control_failure: str | None
    one_shot: bool  # OONI's probe tries each step once; ours retries before a failure counts


def imported(data: Json, source: str) -> Imported:
    """Map one measurement (the whole JSON document) onto our observations."""
    keys: Json = data.get("test_keys") or {}
    url = _clean_url(data.get("input"))
    domain = _idna(urlsplit(url).hostname or "")
    local = observations(keys, domain, url)
    control_failure = keys.get("control_failure")
    control = None if control_failure else _vantage(keys.get("control"), url, domain)
    canaries = {
        name: Observations.model_validate(value)
        for name, value in (keys.get("x_blockprobe_canaries") or {}).items()
    }
    software = str(data.get("software_name") or "")
    return Imported(
        source=source,
        measurement_id=str(data.get("measurement_uid") or data.get("id") or source),
        report_id=str(data.get("report_id") or ""),
        country=data.get("probe_cc"),
        asn=data.get("probe_asn"),
        network=data.get("probe_network_name"),
        software=f"{software} {data.get('software_version') or ''}".strip(),
        test_version=str(data.get("test_version") or ""),
        plan=plan_for(url, domain, local, control, _annotation(data)),
        local=local,
        control=control,
        canaries=canaries,
        ooni=OONIResult(keys.get("blocking"), keys.get("accessible")),
        control_failure=str(control_failure) if control_failure else None,
        one_shot=software != "blockprobe",
    )


def _clean_url(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError("no input URL: not a Web Connectivity measurement")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MappingError(f"input {value!r} is not an http(s) URL")
    return value


def _idna(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _annotation(data: Json) -> str | None:
    annotations = data.get("annotations") or {}
    value = annotations.get("blockprobe_platform") if isinstance(annotations, dict) else None
    return str(value) if value else None


@cache
def _platforms() -> tuple[Platform, ...]:
    return tuple(load_platforms([BUILTIN_DIR]).values())


def plan_for(
    url: str,
    domain: str,
    local: Observations,
    control: Observations | None,
    platform_name: str | None = None,
) -> EndpointPlan:
    """The plan: a known platform's domains, else the host (and the redirect chain if it is the
    page the test helper got too)."""
    known = next(
        (p for p in _platforms() if p.name == platform_name or p.owns(domain)),
        None,
    )
    if known is not None:
        return EndpointPlan(known.name, url, domain, known.domains, cert_names=known.cert_names)
    domains = [domain]
    page = next((r for r in reversed(control.http) if r.status), None) if control else None
    for fetch in local.http:
        if fetch.status and page is not None and not differences(fetch, page):
            domains += [_idna(urlsplit(u).hostname or "") for u in fetch.redirects]
    return EndpointPlan(domain, url, domain, tuple(d for d in dict.fromkeys(domains) if d))


def observations(keys: Json, domain: str, url: str | None = None) -> Observations:
    """This vantage's observations from ``test_keys`` (or one of our export's canaries)."""
    received = _received(keys.get("network_events") or [])
    duplicates = keys.get("x_dns_duplicate_responses") or []
    benign = [
        TLSHandshakeObservation.model_validate(h) for h in keys.get("x_blockprobe_benign_sni") or []
    ]
    return Observations(
        dns=tuple(q for q in (_query(q, duplicates) for q in keys.get("queries") or []) if q),
        tcp=tuple(_connect(c) for c in keys.get("tcp_connect") or []),
        tls=(
            *(_handshake(h, domain, received) for h in keys.get("tls_handshakes") or []),
            *benign,
        ),
        http=_fetches(keys, url or f"http://{domain}/"),
        throughput=tuple(
            ThroughputObservation.model_validate(t)
            for t in keys.get("x_blockprobe_throughput") or []
        ),
    )


def _times(item: Json) -> tuple[float, float]:
    t = float(item.get("t") or 0.0)
    start = item.get("t0")
    t0 = float(start) if start is not None else t
    return t0, max(t, t0)


def _transport(engine: object, tags: Iterable[str]) -> tuple[DnsTransport, bool] | None:
    """(our transport, is the control resolver) for an OONI engine; None to drop the lookup."""
    if engine in SYSTEM_ENGINES:
        return "system", False
    if engine == "doh":
        return "doh", True
    if engine in ("udp", "tcp", "dot") and CONTROL_TAG in tags:
        return ("udp" if engine == "udp" else "tcp" if engine == "tcp" else "dot"), True
    return None  # a public resolver over cleartext: neither the system's nor a trusted control


def _answers(raw: Iterable[Json]) -> tuple[DNSAnswer, ...]:
    found = []
    for a in raw:
        kind = a.get("answer_type")
        if kind == "A" or kind == "AAAA" or kind == "CNAME":
            value = a.get({"A": "ipv4", "AAAA": "ipv6", "CNAME": "hostname"}[kind])
            if value:
                found.append(DNSAnswer(rtype=kind, value=str(value), ttl=int(a.get("ttl") or 0)))
    return tuple(found)


def _query(q: Json, duplicates: list[Json]) -> DNSObservation | None:
    tags = q.get("tags") or []
    kind = _transport(q.get("engine"), tags)
    if kind is None or not q.get("hostname"):
        return None
    transport, control = kind
    failure = failure_of(q.get("failure"))
    answers = _answers(q.get("answers") or [])
    if failure is None and not any(a.rtype in ("A", "AAAA") for a in answers):
        failure = Failure.DNS_NO_ANSWER
    address = str(q.get("resolver_address") or "")
    resolver = f"{transport}:{address}" if address else f"{transport}:{q.get('engine') or 'mk'}"
    if transport == "system" and not address:
        resolver = "system resolver"
    late = tuple(
        tuple(a.value for a in _answers(d.get("answers") or []) if a.rtype != "CNAME")
        for d in duplicates
        if d.get("transaction_id") == q.get("transaction_id")
        and d.get("query_type") == q.get("query_type")
        and d.get("hostname") == q.get("hostname")
    )
    t0, t = _times(q)
    return DNSObservation(
        domain=_idna(str(q["hostname"])),
        qtype="AAAA" if q.get("query_type") == "AAAA" else "A",
        resolver=resolver,
        transport=transport,
        control=control,
        rcode=q["rcode"] if isinstance(q.get("rcode"), str) else _RCODES.get(failure),
        answers=answers,
        late_answers=late,
        failure=failure,
        t0=t0,
        t=t,
    )


def _connect(c: Json) -> TCPConnectObservation:
    status = c.get("status") or {}
    failure = failure_of(status.get("failure"))
    if failure is None and status.get("success") is False:
        failure = Failure.UNKNOWN
    t0, t = _times(c)
    return TCPConnectObservation(ip=str(c["ip"]), port=int(c["port"]), failure=failure, t0=t0, t=t)


def split_address(address: str) -> tuple[str, int]:
    """``ip:port`` (IPv6 bracketed or not) as (ip, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 443


def _received(events: Iterable[Json]) -> dict[object, list[tuple[float, int]]]:
    """Per connection (transaction id): (time, bytes) of each read."""
    reads: dict[object, list[tuple[float, int]]] = {}
    for e in events:
        if e.get("operation") == "read" and e.get("num_bytes"):
            reads.setdefault(e.get("transaction_id"), []).append(
                (float(e.get("t") or 0.0), int(e["num_bytes"]))
            )
    return reads


def _handshake(
    h: Json,
    domain: str,
    received: Mapping[object, list[tuple[float, int]]],
    *,
    control: bool = False,
) -> TLSHandshakeObservation:
    ip, port = split_address(str(h.get("address") or ""))
    failure = failure_of(h.get("failure"))
    t0, t = _times(h)
    reads = received.get(h.get("transaction_id")) if h.get("transaction_id") is not None else None
    got = sum(n for when, n in reads if when <= t) if reads else None
    verified = failure is None and not h.get("no_tls_verify")
    return TLSHandshakeObservation(
        ip=ip,
        port=port,
        sni=_idna(str(h.get("server_name") or domain)),
        control=control,
        failure=failure,
        tls_version=h.get("tls_version") or None,
        cipher=h.get("cipher_suite") or None,
        alpn=h.get("negotiated_protocol") or None,
        cert_valid=True if verified else None,
        certificate=_certificate(h.get("peer_certificates") or []),
        received=got,
        t0=t0,
        t=t,
    )


def _certificate(chain: list[Json]) -> Certificate | None:
    """The leaf's subject, issuer and names from ``peer_certificates`` (base64 DER)."""
    if not chain or not isinstance(chain[0], dict) or not chain[0].get("data"):
        return None
    try:
        leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]["data"]))
        try:
            ext = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            sans = tuple(ext.value.get_values_for_type(x509.DNSName))  # type: ignore[attr-defined]
        except x509.ExtensionNotFound:
            sans = ()
        return Certificate(
            subject=leaf.subject.rfc4514_string(),
            issuer=leaf.issuer.rfc4514_string(),
            sans=sans,
            not_after=leaf.not_valid_after_utc.isoformat(),
        )
    except ValueError:
        return None


def body_bytes(body: object) -> bytes | None:
    """A response body as bytes: a string, or OONI's ``{"format": "base64", "data": ...}``."""
    if isinstance(body, dict) and body.get("format") == "base64":
        try:
            return base64.b64decode(str(body.get("data") or ""))
        except ValueError:
            return None
    if isinstance(body, str):
        return body.encode("utf-8", errors="surrogateescape")
    return None


def _headers(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    headers = {}
    for name, value in raw.items():
        if isinstance(value, dict):  # {"format": "base64", "data": ...}
            value = (body_bytes(value) or b"").decode("latin-1")
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        headers[str(name).lower()] = str(value)
    return headers


def title_of(body: bytes) -> str | None:
    """The page's ``<title>``, whitespace collapsed and entities decoded."""
    match = _TITLE.search(body)
    if match is None:
        return None
    text = html.unescape(match.group(1).decode("utf-8", errors="replace"))
    return " ".join(text.split())[:300]


def _fetch_of(request: Json) -> str:
    return next((t for t in request.get("tags") or [] if str(t).startswith(FETCH_TAG)), "")


def _fetches(keys: Json, url: str) -> tuple[HTTPObservation, ...]:
    requests = [r for r in keys.get("requests") or [] if isinstance(r, dict)]
    groups: dict[str, list[Json]] = {}
    for r in reversed(requests):  # OONI lists the newest hop first
        groups.setdefault(_fetch_of(r), []).append(r)
    fetches = [_fold(hops) for hops in groups.values()]
    failure = failure_of(keys.get("http_experiment_failure"))
    raw_failure = str(keys.get("http_experiment_failure") or "")
    if (
        len(fetches) == 1
        and fetches[0].failure is None
        and fetches[0].status in _REDIRECTS
        and failure is not None
        and not raw_failure.startswith("http_invalid_redirect")
    ):
        # the redirect was followed and the next hop failed before a request was recorded
        fetches[0] = fetches[0].model_copy(update={"failure": failure})
    connected = any((c.get("status") or {}).get("success") for c in keys.get("tcp_connect") or [])
    dns_failure = failure is not None and failure.value.startswith("dns_")
    if not fetches and failure is not None and connected and not dns_failure:
        fetches.append(HTTPObservation(url=url, failure=failure, t0=0.0, t=0.0))
    return tuple(fetches)


def _fold(hops: list[Json]) -> HTTPObservation:
    """One fetch from its redirect hops, oldest first, as ``probe.steps.http`` records it."""
    first, last = hops[0], hops[-1]
    redirects = []
    for hop in hops:
        response = hop.get("response") or {}
        location = _headers(response.get("headers")).get("location")
        url = str((hop.get("request") or {}).get("url") or "")
        if location and response.get("code") in _REDIRECTS:
            redirects.append(urljoin(url, location))
    response = last.get("response") or {}
    failure = failure_of(last.get("failure"))
    code = response.get("code") or None
    redirect_failure = str(last.get("failure") or "").startswith("http_invalid_redirect")
    if redirect_failure and code in _REDIRECTS and redirects:
        failure = None  # a 3xx with a usable Location is an answer
    body = body_bytes(response.get("body")) if code else None
    headers = _headers(response.get("headers"))
    kept = response.get("x_blockprobe_body") or {}  # our export keeps no body, only its facts
    ip = split_address(str(last["address"]))[0] if last.get("address") else None
    t0 = _times(first)[0]
    return HTTPObservation(
        url=str((first.get("request") or {}).get("url") or ""),
        method=str((first.get("request") or {}).get("method") or "GET"),
        ip=_valid_ip(ip),
        status=int(code) if code else None,
        headers=headers,
        redirects=tuple(redirects),
        final_url=str((last.get("request") or {}).get("url") or "") or None,
        title=title_of(body) if body else kept.get("title"),
        body_length=len(body) if body is not None else kept.get("length"),
        body_sha256=kept.get("sha256"),
        body_truncated=bool(response.get("body_is_truncated")),
        blockpage=body_fingerprint(body, headers) if body else kept.get("blockpage"),
        failure=failure,
        body_samples=_body_samples(kept.get("samples")),
        body_seconds=_number(kept.get("seconds")),
        t0=t0,
        t=max(_times(last)[1], t0),
    )


def _body_samples(raw: object) -> tuple[tuple[float, int], ...]:
    """Our export's body progress samples, [[seconds, bytes], ...] (none when malformed)."""
    if not isinstance(raw, list):
        return ()
    samples: list[tuple[float, int]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2):
            return ()
        t, count = item
        if not isinstance(t, int | float) or not isinstance(count, int):
            return ()
        samples.append((float(t), count))
    return tuple(samples)


def _number(raw: object) -> float | None:
    """``raw`` as a float when it is a JSON number (None otherwise)."""
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _vantage(control: object, url: str, domain: str) -> Observations | None:
    """The test helper's answers as the control vantage's observations (None when absent)."""
    if not isinstance(control, dict) or not control:
        return None
    port = urlsplit(url).port or (443 if urlsplit(url).scheme == "https" else 80)
    dns: list[DNSObservation] = []
    lookup = control.get("dns")
    if isinstance(lookup, dict):
        failure = failure_of(lookup.get("failure"))
        addrs = [a for a in lookup.get("addrs") or [] if _valid_ip(str(a))]
        if failure is None and not addrs:
            failure = Failure.DNS_NO_ANSWER
        answers = tuple(DNSAnswer(rtype="AAAA" if ":" in a else "A", value=a, ttl=0) for a in addrs)
        dns.append(
            DNSObservation(
                domain=domain,
                resolver=TEST_HELPER,
                transport="system",
                rcode=_RCODES.get(failure),
                answers=answers if failure is None else (),
                failure=failure,
                t0=0.0,
                t=0.0,
            )
        )
    tcp = [
        TCPConnectObservation(ip=ip, port=p, failure=_status_failure(v), t0=0.0, t=0.0)
        for ip, p, v in _endpoints(control.get("tcp_connect"))
        if p == port
    ]
    tls = [
        TLSHandshakeObservation(
            ip=ip,
            port=p,
            sni=_idna(str(v.get("server_name") or domain)),
            failure=_status_failure(v),
            cert_valid=True if _status_failure(v) is None else None,
            t0=0.0,
            t=0.0,
        )
        for ip, p, v in _endpoints(control.get("tls_handshake"))
        if p == port
    ]
    http = _vantage_page(control.get("http_request"), url)
    throughput = tuple(
        ThroughputObservation.model_validate(t)
        for t in control.get("x_blockprobe_throughput") or []
    )
    return Observations(
        dns=tuple(dns), tcp=tuple(tcp), tls=tuple(tls), http=http, throughput=throughput
    )


def _endpoints(raw: object) -> list[tuple[str, int, Json]]:
    if not isinstance(raw, dict):
        return []
    found = []
    for address, value in raw.items():
        if isinstance(value, dict):
            ip, port = split_address(str(address))
            found.append((ip, port, value))
    return found


def _status_failure(value: Json) -> Failure | None:
    failure = failure_of(value.get("failure"))
    if failure is None and value.get("status") is False:
        return Failure.UNKNOWN
    return failure


def _vantage_page(raw: object, url: str) -> tuple[HTTPObservation, ...]:
    if not isinstance(raw, dict):
        return ()
    failure = failure_of(raw.get("failure"))
    code = raw.get("status_code")
    status = int(code) if isinstance(code, int) and code > 0 else None
    if failure is None and status is None:
        return ()  # the helper sent no page and no failure: nothing to compare with
    length = raw.get("body_length")
    return (
        HTTPObservation(
            url=url,
            status=status if failure is None else None,
            headers=_headers(raw.get("headers")),
            title=(raw.get("title") or None) if failure is None else None,
            redirects=tuple(raw.get("x_blockprobe_redirects") or ()),
            final_url=raw.get("x_blockprobe_final_url"),
            body_length=int(length) if isinstance(length, int) and length >= 0 else None,
            failure=failure,
            t0=0.0,
            t=0.0,
        ),
    )
