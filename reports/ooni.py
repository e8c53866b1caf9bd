"""OONI-compatible JSONL: one line per stored measurement in OONI's base data format.

The mapping is documented in docs/ooni-export.md. ``test_name`` is ``blockprobe_platform``;
``test_keys`` carries OONI's ``accessible``/``blocking`` summary (Web Connectivity's values),
OONI-shaped ``queries``/``tcp_connect``/``tls_handshakes``/``requests``, and our verdict, method,
evidence and the raw observations under ``blockprobe``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from collectors.schema import bundles, measurements, probes
from reports.model import ReportQuery

TEST_NAME = "blockprobe_platform"
TEST_VERSION = "0.1.0"
DATA_FORMAT_VERSION = "0.2.0"
SCRUBBED_IP = "127.0.0.1"  # what OONI writes in probe_ip when the address is not shared

# OONI Web Connectivity's ``blocking`` values, by our method's stage.
BLOCKING = {"dns": "dns", "tcp": "tcp_ip", "tls": "http-failure", "quic": "http-failure"}


def ooni_time(moment: datetime) -> str:
    """OONI's ``YYYY-MM-DD hh:mm:ss`` in UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def blocking_of(verdict: str, method: str | None) -> tuple[bool | None, str | bool | None]:
    """(accessible, blocking) as OONI Web Connectivity reports them."""
    if verdict == "reachable" or verdict == "throttled":  # the page loads, slowly or not
        return True, False
    if verdict == "outage":  # down for everyone: OONI's accessible=false, blocking=false
        return False, False
    if verdict == "blocked":
        stage = (method or "").split(".", 1)[0]
        if stage == "http":
            return False, "http-diff" if method in ("http.blockpage", "http.redirect") else (
                "http-failure"
            )
        return False, BLOCKING.get(stage, "http-failure")
    return None, None  # inconclusive


def report_id(created: datetime, country: str, asn: int, digest: str) -> str:
    """OONI's ``timestamp_testname_CC_ASN_n1_random`` shape, with the bundle digest as random."""
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_{TEST_NAME}_{country}_{asn}_n1_{digest[:16]}"


def _queries(obs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "hostname": q["domain"],
            "query_type": q.get("qtype", "A"),
            "engine": q["transport"],
            "resolver_address": q["resolver"],
            "failure": q.get("failure"),
            "rcode": q.get("rcode"),
            "answers": [
                {"answer_type": a["rtype"], "ipv4" if a["rtype"] == "A" else "value": a["value"]}
                for a in q.get("answers", [])
            ],
            "t0": q.get("t0"),
            "t": q["t"],
        }
        for q in obs.get("dns", [])
    ]


def _tcp(obs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "ip": c["ip"],
            "port": c["port"],
            "status": {"success": c.get("failure") is None, "failure": c.get("failure")},
            "t0": c.get("t0"),
            "t": c["t"],
        }
        for c in obs.get("tcp", [])
    ]


def _tls(obs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "address": f"{h['ip']}:{h.get('port', 443)}",
            "server_name": h["sni"],
            "failure": h.get("failure"),
            "tls_version": h.get("tls_version"),
            "cipher_suite": h.get("cipher"),
            "negotiated_protocol": h.get("alpn"),
            "t0": h.get("t0"),
            "t": h["t"],
        }
        for h in obs.get("tls", [])
    ]


def _requests(obs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "request": {"url": r["url"], "method": r.get("method", "GET")},
            "response": {
                "code": r.get("status"),
                "headers": r.get("headers", {}),
                "body_length": r.get("body_length"),
            },
            "failure": r.get("failure"),
            "t0": r.get("t0"),
            "t": r["t"],
        }
        for r in obs.get("http", [])
    ]


def to_ooni(body: dict[str, Any], *, digest: str, created: datetime) -> dict[str, Any]:
    """One stored measurement (its JSON) as an OONI measurement."""
    vantage = body["vantage"]
    verdict = body["verdict"]
    country = vantage.get("country") or "ZZ"
    asn = vantage.get("asn") or 0
    accessible, blocking = blocking_of(verdict["verdict"], verdict.get("method"))
    started = datetime.fromisoformat(body["started_at"])
    local = body["local"]
    software, _, version = vantage["software"].partition(" ")
    return {
        "annotations": {
            "platform": body["platform"],
            "blockprobe_bundle": digest,
            "blockprobe_measurement_id": body["measurement_id"],
            "network": vantage.get("network") or "",
        },
        "data_format_version": DATA_FORMAT_VERSION,
        "input": body["target"],
        "measurement_start_time": ooni_time(started),
        "probe_asn": f"AS{asn}",
        "probe_cc": country,
        "probe_ip": SCRUBBED_IP,
        "probe_network_name": vantage.get("network") or "",
        "report_id": report_id(created, country, asn, digest),
        "software_name": software or "blockprobe",
        "software_version": version or "unknown",
        "test_name": TEST_NAME,
        "test_runtime": body["runtime"],
        "test_start_time": ooni_time(started),
        "test_version": TEST_VERSION,
        "test_keys": {
            "accessible": accessible,
            "blocking": blocking,
            "queries": _queries(local),
            "tcp_connect": _tcp(local),
            "tls_handshakes": _tls(local),
            "requests": _requests(local),
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
        },
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
