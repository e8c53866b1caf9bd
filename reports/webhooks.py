"""Webhooks: post each new incident event (new, confirmed, ended) once, as JSON.

``blockprobe report watch --webhook URL`` checks the incidents every ``--interval`` seconds
(from a collector's data directory or API) and posts the events it has not posted before; the
ids of those posted are kept in a small state file, so a restart posts nothing twice. A failed
post is retried at the next check.

The body: ``{"event": "new"|"confirmed"|"ended", "at": ISO time, "title": ..., "incident": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import httpx

from reports.feed import Event


def body(event: Event) -> dict[str, object]:
    return {
        "event": event.kind,
        "at": event.at.isoformat(),
        "title": event.title(),
        "incident": event.incident.model_dump(mode="json"),
    }


def load_sent(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the watch state {path}: {exc}") from exc


def save_sent(path: Path, sent: set[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(sorted(sent)))
    tmp.replace(path)


def deliver(
    found: Iterable[Event], hooks: list[str], sent: set[str], client: httpx.Client
) -> tuple[int, list[str]]:
    """Post every event not in ``sent`` (oldest first) to every hook; (posted, errors)."""
    posted, errors = 0, []
    for event in sorted(found, key=lambda e: (e.at, e.id)):
        if event.id in sent:
            continue
        ok = True
        for hook in hooks:
            try:
                response = client.post(hook, json=body(event), timeout=10.0)
                if response.status_code >= 300:
                    ok = False
                    errors.append(f"{hook}: {response.status_code} for {event.id}")
            except httpx.HTTPError as exc:
                ok = False
                errors.append(f"{hook}: {type(exc).__name__} for {event.id}")
        if ok:
            sent.add(event.id)
            posted += 1
    return posted, errors
