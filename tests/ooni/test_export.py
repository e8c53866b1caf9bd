"""Our OONI export read back by ``blockprobe ooni analyse``, and against OONI's real data.

Round trip: every scenario of the classifier's case table, stored as a measurement, exported by
``reports.ooni`` and read back by the importer, gets the same verdict and method. Shape: every
field our export shares with the real measurements of the set has a JSON type they use, the keys
every real Web Connectivity measurement has are there, and our own keys are marked as ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from probe.classify import classify
from probe.model.measurement import Measurement, VantageInfo
from probe.ooni.analyse import analyse
from probe.ooni.mapping import imported
from probe.ooni.reader import read
from reports.ooni import to_ooni
from tests.ooni.shared_set import DATA, needs_set
from tests.probe.classify_cases import CASES, Case

CREATED = datetime(2024, 2, 17, 12, 0, tzinfo=UTC)
OURS = ("x_", "blockprobe")  # how the names of keys OONI does not have begin


def _body(case: Case) -> dict[str, Any]:
    verdict = classify(case.plan, case.local, case.control, case.canaries)
    return Measurement(
        measurement_id=f"m-{case.name}",
        platform=case.plan.platform,
        target=case.plan.url,
        domain=case.plan.domain,
        started_at=CREATED,
        runtime=1.5,
        vantage=VantageInfo(
            country="PK", asn=64500, network="lab-isp1", software="blockprobe 0.1.0"
        ),
        local=case.local,
        control=case.control,
        canaries=case.canaries,
        verdict=verdict,
    ).model_dump(mode="json")


def _exported(case: Case) -> dict[str, Any]:
    line = to_ooni(_body(case), digest="ab" * 32, created=CREATED)
    parsed: dict[str, Any] = json.loads(json.dumps(line))
    return parsed


OWN_CASES = [c for c in CASES if not c.one_shot]


@pytest.mark.parametrize("case", OWN_CASES, ids=[c.name for c in OWN_CASES])
def test_round_trip_gives_the_same_verdict(case: Case) -> None:
    """Exported and read back as OONI data, a measurement gets the verdict it had."""
    original = classify(case.plan, case.local, case.control, case.canaries)
    item = imported(_exported(case), case.name)
    assert not item.one_shot  # our own measurement: every try was made and kept
    (row,) = analyse([item])
    again = row.verdict
    assert (original.kind, original.method) == (again.kind, again.method), (
        original.evidence,
        again.evidence,
    )


def test_report_id_has_six_fields() -> None:
    """OONI's report ids split on ``_`` into six fields; the test part has no underscore."""
    report = _exported(CASES[0])["report_id"]
    assert ["20240217T120000Z", "blockprobeplatform", "PK", "64500", "n1"] == report.split("_")[:5]
    assert 6 == len(report.split("_"))


def test_platform_annotation_is_not_the_os() -> None:
    """``annotations.platform`` is the probe's OS for OONI: ours is ``blockprobe_platform``."""
    annotations = _exported(CASES[0])["annotations"]
    assert "platform" not in annotations
    assert "x" == annotations["blockprobe_platform"]


def _types(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(path, JSON type) for ``value`` and everything in it (list items share ``[]``)."""
    kind = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    name = "number" if isinstance(value, int | float) and not isinstance(value, bool) else ""
    yield path, name or kind[type(value)]
    if isinstance(value, dict):
        for key, item in value.items():
            if path.endswith((".control.tcp_connect", ".control.tls_handshake", ".ip_info")):
                key = "*"  # keyed by address
            if path.endswith(".headers"):
                key = "*"  # any header name
            yield from _types(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _types(item, f"{path}[]")


@cache
def _real() -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Types by path over the real measurements, and the top-level and test_keys keys every
    whole Web Connectivity 0.5 measurement has."""
    types: dict[str, set[str]] = {}
    top: set[str] | None = None
    keys: set[str] | None = None
    for loaded in read(DATA, []):
        for path, kind in _types(loaded.data, "$"):
            types.setdefault(path, set()).add(kind)
        if str(loaded.data.get("test_version", "")).startswith("0.5"):
            top = set(loaded.data) if top is None else top & set(loaded.data)
            tk = set(loaded.data["test_keys"])
            keys = tk if keys is None else keys & tk
    return types, top or set(), keys or set()


def _ours(path: str) -> bool:
    return any(part.startswith(OURS) for part in path.replace("[]", "").split(".")[1:])


@needs_set
@pytest.mark.parametrize("case", CASES[:: max(1, len(CASES) // 25)], ids=lambda c: c.name)
def test_export_parses_like_real_measurements(case: Case) -> None:
    """Same field names and JSON types as OONI's real measurements (our keys marked as ours)."""
    types, top, keys = _real()
    exported = _exported(case)
    wrong = []
    for path, kind in _types(exported, "$"):
        if _ours(path):
            continue
        known = types.get(path)
        if known is None:
            wrong.append(f"{path}: not a field of OONI's measurements")
        elif kind not in known and not (kind == "null" and "null" in known):
            wrong.append(f"{path}: {kind}, OONI has {sorted(known)}")
    assert [] == wrong
    assert set() == top - set(exported) - {"measurement_uid"}
    missing = keys - set(exported["test_keys"])
    allowed = {"x_conn_priority_log", "x_control_request", "x_dns_flags", "x_dns_whoami"}
    allowed |= {"x_do53", "x_doh"}  # OONI's own experiments we do not run
    assert set() == missing - allowed
