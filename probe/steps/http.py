"""HTTP(S) GET of a URL at a chosen address, following redirects and describing the response.

The connection goes to ``ip`` while the URL keeps its host, so the Host header and the TLS SNI are
the real ones (``probe.net.pinning``). Redirects are followed (up to ``max_redirects``) while
their host is within ``follow_within`` (and its subdomains); a redirect elsewhere is recorded in
``redirects`` but not fetched, since a warning page outside the platform is the evidence. Hosts
other than the first are resolved by the system. The body is read up to ``body_cap`` bytes.

While a body arrives, its progress is sampled (``body_samples``: seconds since the status line,
cumulative bytes), so that a fetch cut off by its deadline tells a page still arriving at a low
rate (a policer) from one whose bytes stopped (a stall).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import urllib.parse
from pathlib import Path

import httpx

from probe.fingerprints.blockpages import body_fingerprint
from probe.model.failures import Failure
from probe.model.observations import HTTPObservation
from probe.net.clock import Clock
from probe.net.errors import NETWORK_ERRORS, classify_exception
from probe.net.pinning import PinnedTransport, window_clamp
from probe.net.tlsclient import client_context

BODY_CAP = 512 * 1024  # OONI's cap (1 << 19)
SAMPLE_EVERY = 0.1  # seconds between body progress samples
MAX_REDIRECTS = 10
DEFAULT_USER_AGENT = "blockprobe/0.1"
# Headers worth keeping (fingerprints of servers, caches and blockpages); never cookies.
SAFE_HEADERS = frozenset(
    {
        "age",
        "cache-control",
        "content-encoding",
        "content-language",
        "content-length",
        "content-type",
        "location",
        "server",
        "via",
        "x-cache",
        "x-served-by",
    }
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


class _Page:
    """The last response of a fetch."""

    def __init__(self, url: str, response: httpx.Response, body: bytes, truncated: bool) -> None:
        self.url = url
        self.status = response.status_code
        self.headers = {
            k.lower(): v for k, v in response.headers.items() if k.lower() in SAFE_HEADERS
        }
        self.location = response.headers.get("location")
        self.body = body
        self.truncated = truncated


class _Progress:
    """Body bytes against time since the status line, sampled about every ``SAMPLE_EVERY``."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._start = clock.now()
        self._samples: list[tuple[float, int]] = [(0.0, 0)]
        self._last: tuple[float, int] = (0.0, 0)  # when the last byte came, and the count then

    def add(self, total: int) -> None:
        """Note that the body has reached ``total`` bytes."""
        self._last = (self.elapsed(), total)
        if self._last[0] - self._samples[-1][0] >= SAMPLE_EVERY:
            self._samples.append(self._last)

    def samples(self) -> tuple[tuple[float, int], ...]:
        """The samples, ending with the time the last byte arrived."""
        if self._last[0] > self._samples[-1][0]:
            return (*self._samples, self._last)
        return tuple(self._samples)

    def elapsed(self) -> float:
        """Seconds since the status line."""
        return round(self._clock.now() - self._start, 6)


_Partial = tuple[str, httpx.Response, bytearray, _Progress]  # a page whose body is arriving


async def fetch(
    url: str,
    *,
    ip: str | None,
    deadline: float,
    clock: Clock,
    ca_file: Path | None = None,
    follow_within: tuple[str, ...] | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    body_cap: int = BODY_CAP,
    max_redirects: int = MAX_REDIRECTS,
    follow_upgrade: bool = True,
) -> HTTPObservation:
    """GET ``url`` with its first connection to ``ip`` (None: resolve) before ``deadline``.

    ``follow_within`` None follows redirects to any host; a tuple limits them to those domains.
    ``follow_upgrade`` False records a redirect from http:// to https:// without following it, so
    a cleartext endpoint is judged on its cleartext exchange (its https side is another endpoint).
    """
    t0 = clock.now()
    host = urllib.parse.urlsplit(url).hostname or ""
    pins = {host: ip} if ip else {}
    transport = PinnedTransport(
        pins, ssl_context=client_context(ca_file), socket_options=window_clamp(body_cap)
    )
    page: _Page | None = None
    partial: list[_Partial] = []
    redirects: list[str] = []
    failure: Failure | None = None
    body_samples: tuple[tuple[float, int], ...] = ()
    body_seconds: float | None = None
    try:
        async with (
            asyncio.timeout_at(deadline),
            httpx.AsyncClient(transport=transport, headers={"user-agent": user_agent}) as client,
        ):
            current = url
            while True:
                partial.clear()
                page = await _get(client, current, body_cap, partial, clock)
                if page.status not in _REDIRECT_STATUSES or not page.location:
                    break
                target = urllib.parse.urljoin(current, page.location)
                redirects.append(target)
                if len(redirects) > max_redirects:
                    failure = Failure.UNKNOWN  # a redirect loop
                    break
                if not _within(target, follow_within):
                    break
                if not follow_upgrade and _is_upgrade(current, target):
                    break
                current = target
    except NETWORK_ERRORS as exc:
        failure = classify_exception(exc)
        if partial:  # the status line came, then the body broke off
            at, response, body, progress = partial[0]
            page = _Page(at, response, bytes(body[:body_cap]), True)
            body_samples = progress.samples()
            body_seconds = progress.elapsed()
    return HTTPObservation(
        url=url,
        ip=ip,
        status=page.status if page else None,
        headers=page.headers if page else {},
        redirects=tuple(redirects),
        final_url=page.url if page else None,
        title=_title(page.body) if page else None,
        body_length=len(page.body) if page else None,
        body_sha256=hashlib.sha256(page.body).hexdigest() if page else None,
        body_truncated=page.truncated if page else False,
        blockpage=await _blockpage(page),
        failure=failure,
        body_samples=body_samples,
        body_seconds=body_seconds,
        t0=t0,
        t=clock.now(),
    )


async def _get(
    client: httpx.AsyncClient, url: str, body_cap: int, partial: list[_Partial], clock: Clock
) -> _Page:
    """One GET, the body read up to ``body_cap`` bytes.

    Once the status line is in, ``partial`` holds the page as read so far and its progress: when
    the body then stalls or breaks, the fetch still records the status, the bytes that arrived
    and when they arrived.
    """
    async with client.stream("GET", url) as response:
        body = bytearray()
        progress = _Progress(clock)
        partial[:] = [(url, response, body, progress)]
        truncated = False
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            progress.add(len(body))
            if len(body) > body_cap:
                del body[body_cap:]
                truncated = True
                break
        return _Page(url, response, bytes(body), truncated)


async def _blockpage(page: _Page | None) -> str | None:
    """The blockpage fingerprint the page matches, searched off the event loop."""
    if page is None or not page.body:
        return None
    return await asyncio.to_thread(body_fingerprint, page.body, page.headers)


def _is_upgrade(current: str, target: str) -> bool:
    """Whether a redirect goes from cleartext http:// to https://."""
    return (
        urllib.parse.urlsplit(current).scheme == "http"
        and urllib.parse.urlsplit(target).scheme == "https"
    )


def _within(url: str, domains: tuple[str, ...] | None) -> bool:
    """Whether ``url``'s host is one of ``domains`` or a subdomain (always, when None)."""
    if domains is None:
        return True
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".").lower()
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in domains)


def _title(body: bytes) -> str | None:
    """The page's ``<title>``, whitespace collapsed and entities decoded (None when absent)."""
    match = _TITLE.search(body)
    if match is None:
        return None
    text = html.unescape(match.group(1).decode("utf-8", errors="replace"))
    return " ".join(text.split())[:300]
