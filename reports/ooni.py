"""OONI-compatible JSONL: one line per stored measurement in OONI's base data format.

The mapping is documented in docs/ooni-export.md. ``test_name`` is ``blockprobe_platform``;
``test_keys`` has every key of a Web Connectivity measurement (``accessible``/``blocking``,
``queries``, ``tcp_connect``, ``tls_handshakes``, ``requests``, the test helper's ``control``, the
comparison keys), ``x_blockprobe_*`` for what OONI has no field for, and our verdict, method,
evidence and raw observations under ``blockprobe``. ``blockprobe ooni analyse`` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from collectors.schema import bundles, measurements, probes
from probe.ooni.summary import blocking_of
from reports import ooni_keys
from reports.model import ReportQuery

__all__ = ["blocking_of", "export_lines", "report_id", "to_ooni"]

TEST_NAME = "blockprobe_platform"
TEST_VERSION = "0.2.0"
DATA_FORMAT_VERSION = "0.2.0"
SCRUBBED_IP = "127.0.0.1"  # what OONI writes in probe_ip when the address is not shared
# The df-00x extensions our test_keys follow (OONI's numbering).
EXTENSIONS = {"dnst": 0, "httpt": 0, "netevents": 0, "tcpconnect": 0, "tlshandshake": 0}
# x_blocking_flags bits (Web Connectivity 0.5), by our method's stage.
FLAGS = {"dns": 1, "tcp": 2, "tls": 4, "quic": 4, "http": 8}
HTTP_DIFF, SUCCESS = 16, 32
COMMON_HEADERS = frozenset(
    "date content-type server cache-control vary set-cookie location expires x-powered-by "
    "content-encoding last-modified accept-ranges pragma x-frame-options etag "
    "x-content-type-options age via p3p x-xss-protection content-language cf-ray "
    "strict-transport-security link x-varnish".split()
)


def ooni_time(moment: datetime) -> str:
    """OONI's ``YYYY-MM-DD hh:mm:ss`` in UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def report_id(created: datetime, country: str, asn: int, digest: str) -> str:
    """OONI's ``timestamp_testname_CC_ASN_n1_random`` (six ``_`` fields: no ``_`` in the test
    part, as OONI writes ``webconnectivity``), with the bundle digest as the random part."""
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_{TEST_NAME.replace('_', '')}_{country}_{asn}_n1_{digest[:16]}"


def _flags(verdict: str, method: str | None) -> int:
    if verdict in ("reachable", "throttled"):
        return SUCCESS
    if verdict != "blocked" or method is None:
        return 0
    if method in ("http.blockpage", "http.redirect"):
        return HTTP_DIFF
    return FLAGS.get(method.split(".", 1)[0], 0)


def _title_words(title: str | None) -> set[str]:
    return {w for w in (title or "").lower().split() if len(w) >= 5}


def _page_keys(local: dict[str, Any], th: dict[str, Any]) -> dict[str, Any]:
    """Web Connectivity's comparison of the final page with the test helper's."""
    pages = [r for r in local.get("http", []) if r.get("failure") is None and r.get("status")]
    th_page = th.get("http_request") or {}
    keys: dict[str, Any] = {
        "body_length_match": None,
        "body_proportion": 0,
        "headers_match": None,
        "status_code_match": None,
        "title_match": None,
    }
    if not pages or th_page.get("status_code", -1) <= 0:
        return keys
    page = pages[-1]
    keys["status_code_match"] = page["status"] == th_page["status_code"]
    ours, theirs = page.get("body_length") or 0, th_page.get("body_length") or 0
    if ours > 0 and theirs > 0 and not page.get("body_truncated"):
        keys["body_proportion"] = min(ours, theirs) / max(ours, theirs)
        keys["body_length_match"] = keys["body_proportion"] > 0.7
    uncommon = {h.lower() for h in page.get("headers", {})} - COMMON_HEADERS
    th_uncommon = {h.lower() for h in th_page.get("headers", {})} - COMMON_HEADERS
    keys["headers_match"] = bool(uncommon & th_uncommon)
    keys["title_match"] = not (_title_words(page.get("title")) ^ _title_words(th_page["title"]))
    return keys


def _dns_keys(local: dict[str, Any], th: dict[str, Any], domain: str) -> dict[str, Any]:
    system = [q for q in local.get("dns", []) if q["domain"] == domain and not q.get("control")]
    addresses = {a["value"] for q in system for a in q.get("answers", []) if a["rtype"] != "CNAME"}
    th_addrs = set((th.get("dns") or {}).get("addrs") or [])
    failure = None if addresses else next((q.get("failure") for q in system), None)
    consistency = None
    if addresses and th_addrs:
        consistency = "consistent" if addresses & th_addrs else "inconsistent"
    elif failure is not None and th_addrs:
        consistency = "inconsistent"
    elif failure is not None and th and (th.get("dns") or {}).get("failure"):
        consistency = "consistent"
    return {"dns_experiment_failure": failure, "dns_consistency": consistency}


def keys_of(body: dict[str, Any]) -> dict[str, Any]:
    """The measurement's ``test_keys`` in Web Connectivity's shape (docs/ooni-export.md)."""
    verdict = body["verdict"]
    local = body["local"]
    target = body["target"]
    parts = urlsplit(target)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    accessible, blocking = blocking_of(verdict["verdict"], verdict.get("method"))
    found, duplicates = ooni_keys.queries(local)
    ids: dict[tuple[str, int], int] = {}
    tcp = ooni_keys.tcp_connect(local, ids)
    tls, events, benign = ooni_keys.tls_handshakes(local, ids)
    th = ooni_keys.control(body.get("control"), body["domain"], port)
    fetches = local.get("http", [])
    return {
        "accessible": accessible,
        "agent": "redirect",
        "blocking": blocking,
        "client_resolver": "",
        "control": th,
        "control_failure": None,
        **_dns_keys(local, th, body["domain"]),
        "http_experiment_failure": fetches[-1].get("failure") if fetches else None,
        **_page_keys(local, th),
        "network_events": events,
        "queries": found,
        "requests": ooni_keys.requests(local),
        "retries": None,
        "socksproxy": None,
        "tcp_connect": tcp,
        "tls_handshakes": tls,
        "x_blocking_flags": _flags(verdict["verdict"], verdict.get("method")),
        "x_dns_duplicate_responses": duplicates,
        "x_null_null_flags": 0,
        "x_blockprobe_benign_sni": benign,
        "x_blockprobe_throughput": local.get("throughput", []),
        "x_blockprobe_canaries": body.get("canaries", {}),
        "blockprobe": {
            "verdict": verdict["verdict"],
            "method": verdict.get("method"),
            "confidence": verdict.get("confidence"),
            "evidence": verdict.get("evidence", []),
            "throughput": verdict.get("throughput"),
            "domain": body["domain"],
            "observations": {
                "local": local,
                "control": body.get("control"),
                "canaries": body.get("canaries", {}),
            },
        },
    }


def to_ooni(body: dict[str, Any], *, digest: str, created: datetime) -> dict[str, Any]:
    """One stored measurement (its JSON) as an OONI measurement."""
    vantage = body["vantage"]
    country = vantage.get("country") or "ZZ"
    asn = vantage.get("asn") or 0
    started = datetime.fromisoformat(body["started_at"])
    software, _, version = vantage["software"].partition(" ")
    return {
        "annotations": {
            "blockprobe_platform": body["platform"],
            "blockprobe_bundle": digest,
            "blockprobe_measurement_id": body["measurement_id"],
            "blockprobe_network": vantage.get("network") or "",
        },
        "data_format_version": DATA_FORMAT_VERSION,
        "extensions": dict(EXTENSIONS),
        "input": body["target"],
        "measurement_start_time": ooni_time(started),
        "probe_asn": f"AS{asn}",
        "probe_cc": country,
        "probe_ip": SCRUBBED_IP,
        "probe_network_name": vantage.get("network") or "",
        "report_id": report_id(created, country, asn, digest),
        "resolver_asn": "AS0",  # the resolver's public address and network are not measured
        "resolver_ip": "",
        "resolver_network_name": "",
        "software_name": software or "blockprobe",
        "software_version": version or "unknown",
        "test_helpers": {"backend": {"address": "", "type": "blockprobe"}}
        if body.get("control") is not None
        else {},
        "test_keys": keys_of(body),
        "test_name": TEST_NAME,
        "test_runtime": body["runtime"],
        "test_start_time": ooni_time(started),
        "test_version": TEST_VERSION,
    }


def export_lines(conn: Connection, query: ReportQuery) -> Iterator[str]:
    """JSONL lines for the measurements in the query's window and filters, by start time."""
    m = measurements.c
    stmt = (
        select(m.body, m.bundle_digest, bundles.c.received_at)
        .join(bundles, bundles.c.digest == m.bundle_digest)
        .join(probes, probes.c.key_id == bundles.c.key_id)
        .where(
            m.started_at >= query.since.astimezone(UTC), m.started_at < query.until.astimezone(UTC)
        )
        .where(probes.c.revoked_at.is_(None))  # revoked keys' measurements leave every report
        .order_by(m.started_at, m.id)
    )
    if query.platform is not None:
        stmt = stmt.where(m.platform == query.platform)
    if query.country is not None:
        stmt = stmt.where(m.country == query.country)
    if query.asn is not None:
        stmt = stmt.where(m.asn == query.asn)
    for body, digest, received in conn.execute(stmt):
        created = received if received.tzinfo else received.replace(tzinfo=UTC)
        line = to_ooni(json.loads(body), digest=digest, created=created)
        yield json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n"
