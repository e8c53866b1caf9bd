"""Classify OONI measurements with our classifier, alone or grouped by report.

Measurements of one report (``report_id``: one probe, one session, one network) help each other,
as OONI's own pipeline groups them: one of another site that reached it is a canary (this path
carries traffic), and one of the same host is a further try of the same steps. Measured one by
one, each measurement has only its own test helper as a control.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from probe.classify import classify
from probe.classify.context import reached, tls_failure
from probe.model.measurement import Observations
from probe.model.verdict import Verdict
from probe.ooni.mapping import Imported, MappingError, imported
from probe.ooni.reader import Loaded
from probe.ooni.summary import Agreement, agreement

Category = Literal["DNS", "TCP", "TLS", "HTTP", "control failure", "clean", "down", "unknown"]


@dataclass(frozen=True)
class Row:
    """One measurement with our verdict and how it compares with OONI's."""

    item: Imported
    verdict: Verdict
    agreement: Agreement
    category: Category
    peers: int  # other measurements of the same report used (0 when one by one)


def category(item: Imported) -> Category:
    """What OONI's result says happened, by layer (the figures' categories)."""
    blocking, accessible = item.ooni.blocking, item.ooni.accessible
    if item.control_failure:
        return "control failure"
    if blocking == "dns":
        return "DNS"
    if blocking == "tcp_ip":
        return "TCP"
    if blocking == "http-failure":
        tls_failed = any(tls_failure(h) is not None for h in item.local.tls)
        answered = any(r.status for r in item.local.http)
        return "TLS" if tls_failed and not answered else "HTTP"
    if blocking == "http-diff":
        return "HTTP"
    if blocking is False:
        return "clean" if accessible else "down"
    return "unknown"


def load(loaded: Iterable[Loaded]) -> tuple[list[Imported], list[str]]:
    """Map every loaded measurement; those that are not Web Connectivity become error lines."""
    items: list[Imported] = []
    errors: list[str] = []
    for one in loaded:
        try:
            items.append(imported(one.data, one.source))
        except (MappingError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{one.source}: {exc}")
    return items, errors


def analyse(items: list[Imported], *, grouped: bool = True) -> tuple[Row, ...]:
    """Our verdict for each measurement (with its report's others when ``grouped``)."""
    reports: dict[str, list[Imported]] = {}
    for item in items:
        if item.report_id:
            reports.setdefault(item.report_id, []).append(item)
    rows = []
    for item in items:
        peers = [p for p in reports.get(item.report_id, []) if p is not item] if grouped else []
        local, canaries = _with_peers(item, peers)
        verdict = classify(item.plan, local, item.control, canaries, one_shot=item.one_shot)
        rows.append(
            Row(
                item=item,
                verdict=verdict,
                agreement=agreement(
                    verdict.kind, verdict.method, item.ooni.blocking, item.ooni.accessible
                ),
                category=category(item),
                peers=len(peers),
            )
        )
    return tuple(rows)


def _with_peers(
    item: Imported, peers: list[Imported]
) -> tuple[Observations, dict[str, Observations]]:
    """This measurement's observations with its peers' tries, and its canaries."""
    local = item.local
    canaries = dict(item.canaries)
    for peer in peers:
        if peer.plan.domain == item.plan.domain:
            same_url = tuple(r for r in peer.local.http if peer.plan.url == item.plan.url)
            local = local.model_copy(
                update={
                    "dns": (*local.dns, *peer.local.dns),
                    "tcp": (*local.tcp, *peer.local.tcp),
                    "tls": (*local.tls, *peer.local.tls),
                    "http": (*local.http, *same_url),
                }
            )
        elif reached(peer.local) and peer.plan.domain not in canaries:
            canaries[peer.plan.domain] = peer.local
    return local, canaries
