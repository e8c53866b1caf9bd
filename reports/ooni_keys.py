"""Our observations in OONI's shapes: the ``test_keys`` of a Web Connectivity measurement.

``queries`` (df-002), ``tcp_connect`` (df-005), ``tls_handshakes`` (df-006), ``network_events``
(df-008), ``requests`` (df-001, one entry per redirect hop, newest first) and the test helper's
``control``, as OONI's probe writes them, so that OONI's tools and ``blockprobe ooni analyse``
read them back. What OONI has no field for (the benign-SNI handshakes, the canaries, the budgeted
transfers) goes under ``x_blockprobe_*`` keys in our own shape.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

Json = dict[str, Any]
CONTROL_TAG = "blockprobe_control_resolver"
FETCH_TAG = "blockprobe_fetch="
REDIRECT_CODE = 302  # intermediate hops: the probe records where a redirect led, not its code
TOR = {"exit_ip": None, "exit_name": None, "is_tor": False}
# OpenSSL's names of the TLS 1.2 suites servers pick, as OONI (Go) writes them (IANA names).
CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "AES128-SHA": "TLS_RSA_WITH_AES_128_CBC_SHA",
    "AES256-SHA": "TLS_RSA_WITH_AES_256_CBC_SHA",
}


def resolver_address(resolver: str) -> str:
    """OONI's ``resolver_address``: ``IP:53`` for a resolver we asked over UDP, a DoH URL as is."""
    kind, _, where = resolver.partition(":")
    if kind == "doh" or "://" in where:
        return where
    if not where or not any(c.isdigit() for c in where):
        return ""  # a name such as "system:helper" is no address
    if where.count(":") > 1 and not where.startswith("["):
        return f"[{where}]:53"  # an IPv6 address
    return where if where.rsplit(":", 1)[-1].isdigit() and "." in where else f"{where}:53"


def _answer(answer: Json) -> Json:
    key = {"A": "ipv4", "AAAA": "ipv6", "CNAME": "hostname"}[answer["rtype"]]
    return {
        "asn": 0,
        "as_org_name": "",
        "answer_type": answer["rtype"],
        key: answer["value"],
        "ttl": answer.get("ttl"),
    }


def queries(obs: Json, first_id: int = 1) -> tuple[list[Json], list[Json]]:
    """(``queries``, ``x_dns_duplicate_responses``) for our DNS observations."""
    found, duplicates = [], []
    for number, q in enumerate(obs.get("dns", []), start=first_id):
        transport = q["transport"]
        tags = [CONTROL_TAG] if q.get("control") and transport != "doh" else []
        engine = "system" if transport == "system" else transport
        entry = {
            "answers": [_answer(a) for a in q.get("answers", [])] or None,
            "engine": engine,
            "failure": q.get("failure"),
            "hostname": q["domain"],
            "query_type": q.get("qtype", "A"),
            "resolver_hostname": None,
            "resolver_port": None,
            "resolver_address": resolver_address(q["resolver"]),
            "t0": q.get("t0"),
            "t": q["t"],
            "tags": tags,
            "transaction_id": number,
        }
        found.append(entry)
        rtype = q.get("qtype", "A")
        for late in q.get("late_answers", []):
            answers = [{"rtype": rtype, "value": v, "ttl": 0} for v in late]
            duplicates.append(
                entry | {"answers": [_answer(a) for a in answers] or None, "failure": None}
            )
    return found, duplicates


def tcp_connect(obs: Json, ids: dict[tuple[str, int], int]) -> list[Json]:
    """``tcp_connect`` entries; ``ids`` numbers each connection for the later entries."""
    found = []
    for c in obs.get("tcp", []):
        number = ids.setdefault((c["ip"], c["port"]), len(ids) + 1)
        found.append(
            {
                "ip": c["ip"],
                "port": c["port"],
                "status": {"failure": c.get("failure"), "success": c.get("failure") is None},
                "t0": c.get("t0"),
                "t": c["t"],
                "tags": [],
                "transaction_id": number,
            }
        )
    return found


def endpoint(ip: str, port: int) -> str:
    """``ip:port``, the IPv6 address bracketed."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _der(chain: Iterable[str]) -> list[Json]:
    certificates = []
    for pem in chain:
        try:
            der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
        except ValueError:
            continue
        certificates.append({"format": "base64", "data": base64.b64encode(der).decode()})
    return certificates


def tls_handshakes(
    obs: Json, ids: dict[tuple[str, int], int]
) -> tuple[list[Json], list[Json], list[Json]]:
    """(``tls_handshakes`` with the platform's SNI, ``network_events`` of their reads, the
    benign-SNI control handshakes in our own shape)."""
    found, events, benign = [], [], []
    for h in obs.get("tls", []):
        if h.get("control"):
            benign.append(h)
            continue
        port = h.get("port", 443)
        number = ids.setdefault((h["ip"], port), len(ids) + 1)
        failure = h.get("failure")
        if failure is None and h.get("cert_valid") is False:
            failure = "ssl_invalid_certificate"
        certificate = h.get("certificate") or {}
        cipher = h.get("cipher")
        found.append(
            {
                "network": "tcp",
                "address": endpoint(h["ip"], port),
                "cipher_suite": CIPHERS.get(cipher, cipher) if cipher else "",
                "failure": failure,
                "negotiated_protocol": h.get("alpn") or "",
                "no_tls_verify": False,
                "peer_certificates": _der(certificate.get("chain_pem", ())) or None,
                "server_name": h["sni"],
                "t0": h.get("t0"),
                "t": h["t"],
                "tags": [],
                "tls_version": h.get("tls_version") or "",
                "transaction_id": number,
            }
        )
        if h.get("received"):
            events.append(
                {
                    "address": endpoint(h["ip"], port),
                    "failure": None,
                    "num_bytes": h["received"],
                    "operation": "read",
                    "proto": "tcp",
                    "t0": h.get("t0"),
                    "t": h["t"],
                    "transaction_id": number,
                }
            )
    return found, events, benign


def header_name(name: str) -> str:
    """A header name as OONI (Go) writes it: ``content-type`` -> ``Content-Type``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {header_name(k): v for k, v in headers.items()}


def _hop(
    url: str,
    code: int,
    headers: dict[str, str],
    *,
    fetch: int,
    depth: int,
    fetched: Json,
    failure: str | None,
) -> Json:
    scheme = urlsplit(url).scheme
    port = urlsplit(url).port or (443 if scheme == "https" else 80)
    ip = fetched.get("ip")
    response: Json = {
        "body": None,  # bodies are not kept: only their length, title and fingerprint
        "body_is_truncated": bool(fetched.get("body_truncated")),
        "code": code,
        "headers": headers,
        "headers_list": [[k, v] for k, v in headers.items()],
    }
    return {
        "network": "tcp",
        "address": endpoint(ip, port) if ip else "",
        "alpn": "",
        "failure": failure,
        "request": {
            "body": "",
            "body_is_truncated": False,
            "headers": {},
            "headers_list": [],
            "method": fetched.get("method", "GET"),
            "tor": dict(TOR),
            "x_transport": "tcp",
            "url": url,
        },
        "response": response,
        "t0": fetched.get("t0"),
        "t": fetched["t"],
        "tags": [f"depth={depth}", f"{FETCH_TAG}{fetch}"],
    }


def requests(obs: Json) -> list[Json]:
    """``requests``: each fetch's redirect hops, newest first, the fetches in order."""
    found: list[Json] = []
    for fetch, r in enumerate(obs.get("http", []), start=1):
        chain = [r["url"], *r.get("redirects", [])]
        final = r.get("final_url")
        last = chain.index(final) if final in chain else len(chain) - 1
        if r.get("failure") and final is None:
            last = len(chain) - 1
        hops = []
        for depth, url in enumerate(chain[: last + 1]):
            if depth < last:
                location = {"Location": chain[depth + 1]}
                hops.append(
                    _hop(
                        url,
                        REDIRECT_CODE,
                        location,
                        fetch=fetch,
                        depth=depth,
                        fetched=r,
                        failure=None,
                    )
                )
                continue
            hop = _hop(
                url,
                r.get("status") or 0,
                _headers(r.get("headers", {})),
                fetch=fetch,
                depth=depth,
                fetched=r,
                failure=r.get("failure"),
            )
            hop["response"]["x_blockprobe_body"] = {
                "length": r.get("body_length"),
                "sha256": r.get("body_sha256"),
                "title": r.get("title"),
                "blockpage": r.get("blockpage"),
                "samples": [list(x) for x in r.get("body_samples", [])],
                "seconds": r.get("body_seconds"),
            }
            hops.append(hop)
        found.extend(reversed(hops))
    return found


def control(obs: Json | None, domain: str, port: int) -> Json:
    """The control vantage's observations as OONI's test helper answers (``test_keys.control``)."""
    if obs is None:
        return {}
    lookups = [q for q in obs.get("dns", []) if q["domain"] == domain and not q.get("control")]
    addrs = [a["value"] for q in lookups for a in q.get("answers", []) if a["rtype"] != "CNAME"]
    failure = None if addrs else next((q.get("failure") for q in lookups), None)
    tcp: dict[str, Json] = {}
    for c in obs.get("tcp", []):
        key = endpoint(c["ip"], c["port"])
        ok = c.get("failure") is None or tcp.get(key, {}).get("status") is True
        tcp[key] = {"status": ok, "failure": None if ok else c.get("failure")}
    tls: dict[str, Json] = {}
    for h in obs.get("tls", []):
        if h.get("control"):
            continue
        key = endpoint(h["ip"], h.get("port", 443))
        failure_h = h.get("failure")
        if failure_h is None and h.get("cert_valid") is False:
            failure_h = "ssl_invalid_certificate"
        ok = failure_h is None or tls.get(key, {}).get("status") is True
        tls[key] = {"server_name": h["sni"], "status": ok, "failure": None if ok else failure_h}
    pages = obs.get("http", [])
    page = next((p for p in reversed(pages) if p.get("failure") is None), None) or (
        pages[-1] if pages else None
    )
    http: Json = {
        "body_length": -1,
        "failure": None,
        "title": "",
        "headers": {},
        "status_code": -1,
    }
    if page is not None:
        answered = page.get("failure") is None and page.get("status") is not None
        http = {
            "body_length": page.get("body_length") if answered and page.get("body_length") else -1,
            "failure": page.get("failure"),
            "title": page.get("title") or "",
            "headers": _headers(page.get("headers", {})),
            "status_code": page.get("status") if answered else -1,
            "x_blockprobe_final_url": page.get("final_url"),
            "x_blockprobe_redirects": list(page.get("redirects", [])),
        }
    return {
        "dns": {"failure": failure, "addrs": addrs},
        "tcp_connect": {k: v for k, v in tcp.items() if k.endswith(f":{port}")},
        "tls_handshake": {k: v for k, v in tls.items() if k.endswith(f":{port}")},
        "http_request": http,
        "x_blockprobe_throughput": [t for t in obs.get("throughput", []) if not t.get("control")],
    }
