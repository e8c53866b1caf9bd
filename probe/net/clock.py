"""Measurement time: monotonic seconds relative to a measurement's zero time, and step deadlines.

Observations carry ``t0``/``t`` from a ``Clock``; tests inject the time source.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Clock:
    """Monotonic seconds since a zero time (by default, when the clock was made)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._zero = monotonic()

    def now(self) -> float:
        """Seconds since the zero time, to the microsecond (finer digits only fill bundles)."""
        return round(self._monotonic() - self._zero, 6)


def deadline_in(seconds: float) -> float:
    """The loop time ``seconds`` from now: the ``deadline`` a step takes."""
    return asyncio.get_running_loop().time() + seconds


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` on the running loop's clock (never negative)."""
    return max(0.0, deadline - asyncio.get_running_loop().time())
