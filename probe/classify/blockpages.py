"""Blockpages: known blockpage fingerprints, and how a page differs from the control's.

Fingerprints match what an observation keeps of a response (title, a header, the URLs it
points to), never the body text. Entries named ``ooni.*`` come from OONI's public
blocking-fingerprints table; ``lab.*`` match the mock censor's regulator page, styled on the
Pakistan Telecommunication Authority's "Surf Safely!" notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from probe.model.observations import HTTPObservation

LENGTH_RATIO = 0.7  # bodies closer than this (shorter/longer) count as the same length (OONI)
TITLE_WORD = 5  # title words shorter than this are ignored when comparing titles (OONI)


@dataclass(frozen=True)
class Fingerprint:
    """One blockpage signature: a case-insensitive regex searched in one part of a response."""

    name: str
    where: Literal["title", "server", "url"]
    pattern: str

    def matches(self, response: HTTPObservation) -> bool:
        """True when this signature is found in ``response``."""
        if self.where == "title":
            values: tuple[str, ...] = (response.title,) if response.title else ()
        elif self.where == "server":
            values = (_header(response, "server"),)
        else:
            values = urls(response)
        return any(re.search(self.pattern, value, re.IGNORECASE) for value in values)


FINGERPRINTS: tuple[Fingerprint, ...] = (
    Fingerprint("lab.pk_pta_title", "title", r"surf safely"),
    Fingerprint("lab.pk_pta_host", "url", r"^https?://warning\.pta\.lab(?:[:/?]|$)"),
    Fingerprint("ooni.au_0", "title", r"^notification: policy: url filtering$"),
    Fingerprint("ooni.hu_1", "title", r"^web page blocked$"),
    Fingerprint("ooni.ae_0", "server", r"^protected by wirefilter"),
    Fingerprint("ooni.es_1", "server", r"^v2r2c00-iae/1\.0$"),  # seen in ES, IT, MX and PK
    Fingerprint("ooni.ae_1", "url", r"^http://www\.bluecoat\.com/notify-notifyuser1"),
    Fingerprint("ooni.id_0", "url", r"^http://internet-positif\.org"),
    Fingerprint("ooni.ru_80", "url", r"^https://vk\.com/blank\.php\?rkn="),
    Fingerprint("ooni.gr_1", "url", r"^http://1\.2\.3\.50/ups/no_access"),
)


def _header(response: HTTPObservation, name: str) -> str:
    return next((v for k, v in response.headers.items() if k.lower() == name), "")


def urls(response: HTTPObservation) -> tuple[str, ...]:
    """Every URL ``response`` went to or pointed at: redirects, Location, the final URL."""
    found = [*response.redirects, _header(response, "location"), response.final_url or ""]
    return tuple(u for u in found if u)


def fingerprint(response: HTTPObservation) -> Fingerprint | None:
    """The first known blockpage signature ``response`` matches, if any."""
    return next((fp for fp in FINGERPRINTS if fp.matches(response)), None)


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
