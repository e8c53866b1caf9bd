"""Blockpages: known blockpage fingerprints, and how a page differs from the control's.

Two kinds of fingerprint. The project's own (``lab.*``) match the mock censor's regulator page,
styled on the Pakistan Telecommunication Authority's "Surf Safely!" notice. The others come from
OONI's public blocking-fingerprints lists (OONI, Censored Planet, Citizen Lab), turned into
``data/fingerprints.json`` by ``probe.fingerprints.make``: patterns on the body, on a
header (``Location`` included) or on a DNS answer. A body pattern is matched when the body is at
hand (the HTTP step, an imported OONI measurement) and its name kept in
``HTTPObservation.blockpage``; the body itself is not kept. Rows of scope ``fp`` (known false
positives) are never matched: they never make a block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from probe.model.observations import HTTPObservation

LENGTH_RATIO = 0.7  # bodies closer than this (shorter/longer) count as the same length (OONI)
TITLE_WORD = 5  # title words shorter than this are ignored when comparing titles (OONI)
DATA = Path(__file__).resolve().parent / "data" / "fingerprints.json"
FALSE_POSITIVE = "fp"  # the scope OONI gives a pattern known to match ordinary pages
SPECIFIC_SCOPES = frozenset({"lab", "nat", "isp"})  # pages only a censor serves
BODY_SCAN = 64 * 1024  # bytes of a body searched for blockpage patterns

Where = Literal["title", "server", "url", "body", "header"]
PatternType = Literal["full", "prefix", "contains", "regexp"]


@dataclass(frozen=True)
class Fingerprint:
    """One blockpage signature, searched in one part of a response.

    ``where`` is the title, the Server header, the URLs a response points to (Location and
    redirects), the body, or the header ``header``. ``kind`` says how ``pattern`` matches: a
    case-insensitive regex (``lab.*``), or OONI's full/prefix/contains/regexp (case-sensitive).
    """

    name: str
    where: Where
    pattern: str
    kind: PatternType | Literal["search"] = "search"
    header: str | None = None
    scope: str = "lab"

    @property
    def specific(self) -> bool:
        """True for a page only a censor serves: ours, and OONI's national and ISP blockpages.

        Other scopes (a filtering product such as a DDoS shield, a school's filter, a generic
        word like "Web Filter") can match ordinary pages, so they need a control to differ.
        """
        return self.scope in SPECIFIC_SCOPES

    def test(self, value: str) -> bool:
        """True when ``value`` carries this signature."""
        if self.kind == "search":
            return re.search(self.pattern, value, re.IGNORECASE) is not None
        if self.kind == "full":
            return value == self.pattern
        if self.kind == "prefix":
            return value.startswith(self.pattern)
        if self.kind == "contains":
            return self.pattern in value
        return _regex(self.pattern).search(value) is not None

    def matches(self, response: HTTPObservation) -> bool:
        """True when this signature is found in what ``response`` kept (never the body)."""
        if self.where == "title":
            values: tuple[str, ...] = (response.title,) if response.title else ()
        elif self.where == "server":
            values = (_header(response.headers, "server"),)
        elif self.where == "url":
            values = urls(response)
        elif self.where == "header" and self.header == "location":
            # the Location values a response (and its redirects) pointed to, not its own URL
            values = (*response.redirects, _header(response.headers, "location"))
        elif self.where == "header" and self.header is not None:
            values = (_header(response.headers, self.header),)
        else:
            return False
        return any(value and self.test(value) for value in values)


LAB: tuple[Fingerprint, ...] = (
    Fingerprint("lab.pk_pta_title", "title", r"surf safely"),
    Fingerprint("lab.pk_pta_host", "url", r"^https?://warning\.pta\.lab(?:[:/?]|$)"),
)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class DNSFingerprint:
    """An address censors answer with (a blockpage server, a poison reply)."""

    name: str
    address: str
    scope: str
    countries: tuple[str, ...]


@dataclass(frozen=True)
class _Lists:
    http: tuple[Fingerprint, ...]
    dns: dict[str, DNSFingerprint]
    source: Mapping[str, object]


@cache
def _lists() -> _Lists:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    http = []
    for row in data["http"]:
        if row["scope"] == FALSE_POSITIVE:
            continue
        location = str(row["location"])
        where: Where = "body" if location == "body" else "header"
        header = location.partition(".")[2].lower() or None
        kind = row["pattern_type"]
        http.append(Fingerprint(row["name"], where, row["pattern"], kind, header, row["scope"]))
    dns = {
        row["pattern"]: DNSFingerprint(
            row["name"], row["pattern"], row["scope"], tuple(row["countries"])
        )
        for row in data["dns"]
        if row["scope"] != FALSE_POSITIVE and row["pattern_type"] == "full"
    }
    return _Lists(tuple(http), dns, data["source"])


def fingerprints() -> tuple[Fingerprint, ...]:
    """Every signature matched on a response: the lab's, then OONI's (scope ``fp`` left out)."""
    return (*LAB, *_lists().http)


def source() -> Mapping[str, object]:
    """Where OONI's lists came from (repository, commit, SHA-256 of each CSV file)."""
    return _lists().source


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")


def urls(response: HTTPObservation) -> tuple[str, ...]:
    """Every URL ``response`` went to or pointed at: redirects, Location, the final URL."""
    found = [*response.redirects, _header(response.headers, "location"), response.final_url or ""]
    return tuple(u for u in found if u)


def fingerprint(response: HTTPObservation) -> Fingerprint | None:
    """The first known blockpage signature ``response`` matches, if any."""
    if response.blockpage is not None:
        known = next((fp for fp in _lists().http if fp.name == response.blockpage), None)
        return known or Fingerprint(response.blockpage, "body", "", scope="unknown")
    return next((fp for fp in fingerprints() if fp.where != "body" and fp.matches(response)), None)


def body_fingerprint(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The name of the first signature a response (body and headers) matches, if any.

    Only the first ``BODY_SCAN`` bytes are searched: blockpages are small, and searching every
    pattern through a half-megabyte page would hold the probe's event loop for most of a second.
    """
    text = body[:BODY_SCAN].decode("utf-8", errors="replace")
    for fp in _lists().http:
        if fp.where == "body":
            if fp.test(text):
                return fp.name
        elif fp.header is not None and (value := _header(headers, fp.header)) and fp.test(value):
            return fp.name
    return None


def dns_fingerprint(address: str) -> DNSFingerprint | None:
    """The DNS fingerprint (a known censor answer) ``address`` matches, if any."""
    return _lists().dns.get(address)


def _title_words(title: str | None) -> frozenset[str]:
    return frozenset(w for w in (title or "").lower().split() if len(w) >= TITLE_WORD)


def differences(local: HTTPObservation, control: HTTPObservation) -> tuple[str, ...]:
    """Why ``local`` is not the page the control vantage got (empty when it is the same page).

    A page differs when its status differs, or when both its length (ratio below 0.7) and its
    title (a word of five letters or more in one title only) differ. A control page that is not
    a 2xx/3xx answer is no reference, and gives no difference.
    """
    if control.status is None or not 200 <= control.status < 400:
        return ()
    if local.status != control.status:
        return (f"status {local.status} here, {control.status} from the control vantage",)
    short = min(local.body_length or 0, control.body_length or 0)
    long = max(local.body_length or 0, control.body_length or 0)
    comparable = short > 0 and not (local.body_truncated or control.body_truncated)
    if not comparable or short / long >= LENGTH_RATIO:
        return ()
    if _title_words(local.title) == _title_words(control.title) and (
        (local.title is None) == (control.title is None)
    ):
        return ()
    return (
        f"body {local.body_length} bytes here, {control.body_length} from the control vantage",
        f"title {local.title!r} here, {control.title!r} from the control vantage",
    )
