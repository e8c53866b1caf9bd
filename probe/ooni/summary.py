"""Our verdicts next to OONI's ``blocking``/``accessible`` pair.

Web Connectivity says ``blocking`` = ``dns``, ``tcp_ip``, ``http-failure`` (TLS failures
included) or ``http-diff`` with ``accessible`` false; ``false``/``true`` for a working site,
``false``/``false`` for a site down everywhere, and ``null``/``null`` when it cannot tell. The
export writes our verdicts that way; ``blockprobe ooni analyse`` compares them with OONI's.
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["interference", "accessible", "down", "unknown"]
Agreement = Literal["agree", "other layer", "disagree"]

# OONI Web Connectivity's ``blocking`` values, by our method's stage.
BLOCKING = {"dns": "dns", "tcp": "tcp_ip", "tls": "http-failure", "quic": "http-failure"}


def blocking_of(verdict: str, method: str | None) -> tuple[bool | None, str | bool | None]:
    """(accessible, blocking) as OONI Web Connectivity reports them, for one of our verdicts."""
    if verdict in ("reachable", "throttled"):  # the page loads, slowly or not
        return True, False
    if verdict == "outage":  # down for everyone: OONI's accessible=false, blocking=false
        return False, False
    if verdict == "blocked":
        stage = (method or "").split(".", 1)[0]
        if stage == "http":
            diff = method in ("http.blockpage", "http.redirect")
            return False, "http-diff" if diff else "http-failure"
        return False, BLOCKING.get(stage, "http-failure")
    return None, None  # inconclusive


def ooni_outcome(blocking: object, accessible: object) -> Outcome:
    """What OONI's pair says, in four words."""
    if isinstance(blocking, str):
        return "interference"
    if blocking is False:
        return "accessible" if accessible is True else "down"
    return "unknown"


def our_outcome(verdict: str) -> Outcome:
    """Our verdict in the same four words (a throttle is interference, as OONI's QA counts it)."""
    return {
        "blocked": "interference",
        "throttled": "interference",
        "reachable": "accessible",
        "outage": "down",
    }.get(verdict, "unknown")  # type: ignore[return-value]


def agreement(verdict: str, method: str | None, blocking: object, accessible: object) -> Agreement:
    """``agree`` (same outcome, and the same layer for a block), ``other layer``, ``disagree``."""
    ours, theirs = our_outcome(verdict), ooni_outcome(blocking, accessible)
    if ours != theirs:
        return "disagree"
    if ours == "interference" and verdict == "blocked":
        _, our_blocking = blocking_of(verdict, method)
        return "agree" if our_blocking == blocking else "other layer"
    return "agree"
