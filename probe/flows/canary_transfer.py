"""The run's canary control transfers: one download of a large object on an unrelated site, and
one upload to an unrelated site.

Throttling is judged against a control transfer on the same path. The same address with a benign
SNI is one, but a real server rarely serves its large object to a name it does not host (it sends
an alert, or its default page). So a run also downloads one large object from an unrelated site
(``throughput_canary`` in the config) through the same access path, once, shared by every
endpoint of the run. It starts when the first endpoint starts its own transfers, so it shares the
path with them: on a slow or congested link it is as slow as they are. The download moves at most
half of one platform transfer's byte budget (``size``): enough to leave slow start on a fast path,
and the run pays for it once. Uploads have their own canary (``upload_canary``), sent the upload
budget when the first endpoint uploads: many links upload far slower than they download, so an
upload is only ever compared with an upload.

``run_check`` opens a ``CanaryTransfer`` for the run (``active``); the web flow calls ``begin``
when it is about to transfer; the classifier gets the result with the canaries' observations.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from probe.flows.plan import MeasureSettings
from probe.model.measurement import Observations
from probe.model.observations import Direction, ThroughputObservation
from probe.net.clock import Clock, deadline_in
from probe.steps import throughput

logger = logging.getLogger(__name__)
_CURRENT: contextvars.ContextVar[tuple[CanaryTransfer, ...]] = contextvars.ContextVar(
    "canary_transfers", default=()
)


class CanaryTransfer:
    """One budgeted transfer with ``url``, started at most once, awaited by every endpoint."""

    def __init__(self, url: str, settings: MeasureSettings, direction: Direction = "down") -> None:
        self.url = url
        self.direction = direction
        self._settings = settings
        self._task: asyncio.Task[ThroughputObservation] | None = None

    def begin(self) -> None:
        """Start the download now, unless it already started."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._transfer())

    @property
    def started(self) -> bool:
        """Whether some endpoint asked for it."""
        return self._task is not None

    async def result(self) -> ThroughputObservation | None:
        """The transfer, once done (None when no endpoint transferred anything)."""
        if self._task is None:
            return None
        try:  # shielded: one endpoint giving up must not stop it for the others
            return await asyncio.shield(self._task)
        except Exception:  # a bug in the transfer must not sink the endpoints' verdicts
            logger.exception("the canary control transfer from %s failed", self.url)
            return None

    async def finish(self) -> ThroughputObservation | None:
        """The transfer at the end of the run (None if it never started, or had to be stopped)."""
        if self._task is None:
            return None
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})
        if self._task.cancelled() or self._task.exception() is not None:
            return None
        return self._task.result()

    @property
    def size(self) -> int:
        """Its byte budget."""
        return size(self._settings, self.direction)

    async def _transfer(self) -> ThroughputObservation:
        transfer = throughput.upload if self.direction == "up" else throughput.download
        return await transfer(
            self.url,
            ip=None,
            control=True,
            byte_budget=self.size,
            deadline=deadline_in(self._settings.timeouts.throughput),
            clock=Clock(),
        )


def size(settings: MeasureSettings, direction: Direction = "down") -> int:
    """A canary control transfer's byte budget: half a platform download's, a whole upload's."""
    return settings.upload_bytes if direction == "up" else settings.throughput_bytes // 2


@contextmanager
def active(transfers: tuple[CanaryTransfer, ...]) -> Iterator[None]:
    """Make ``transfers`` the ones the flows started inside this block (and their tasks) begin."""
    token = _CURRENT.set(transfers)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def begin(directions: tuple[Direction, ...] = ("down",)) -> None:
    """Start the current run's canary control transfers in ``directions`` that have not started."""
    for transfer in _CURRENT.get():
        if transfer.direction in directions:
            transfer.begin()


def with_transfer(
    canaries: Mapping[str, Observations], url: str, transfer: ThroughputObservation | None
) -> dict[str, Observations]:
    """``canaries`` with ``transfer`` added to ``url``'s canary (a new entry if there is none)."""
    found = dict(canaries)
    if transfer is None:
        return found
    host = (urllib.parse.urlsplit(url).hostname or url).lower()
    key = next((k for k in found if k == url), host)
    mine = found.get(key, Observations())
    found[key] = mine.model_copy(update={"throughput": (*mine.throughput, transfer)})
    return found
