"""A scheduled run in a short-lived child process, so the daemon's idle memory stays its own.

A run imports the measuring code (HTTP and TLS clients, DNS, the classifier, packet capture) and
fills caches and heap arenas that a long-lived process keeps after the run: the daemon's idle RSS
grew by about 20 MiB once every platform had run. So the daemon hands each run to a fresh Python
process (``python -m probe.daemon.run_child``) and keeps only the results: the request (config,
platforms, byte budget) goes in as JSON on stdin, the reply (run document, measurements, bytes
counted) comes back as JSON on stdout. The child also seals the bundles (signing needs the
cryptography library, about 10 MiB resident), with the probe's keys from the state directory; the
daemon puts them into its outbox, which stays its own. The child's log goes to the daemon's stderr.
Stopping the daemon mid-run kills the child.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from probe.budget import DataBudget
from probe.config import ProbeConfig
from probe.model import Measurement, RunDocument
from probe.model.base import FrozenModel
from probe.platforms import Platform

logger = logging.getLogger(__name__)


class RunRequest(FrozenModel):
    """What the child measures, and within how many bytes."""

    config: ProbeConfig
    platforms: list[Platform]
    limit: int
    state_dir: Path  # where the probe's keys are
    country: str | None = None  # the bundles' country label


class SealedBundle(FrozenModel):
    """One sealed bundle, ready for the outbox."""

    digest: str
    envelope: str  # base64


class SealedMeasurements(list[Measurement]):
    """A run's measurements and the bundles the child already sealed from them."""

    def __init__(self, measurements: Sequence[Measurement], bundles: Sequence[SealedBundle]):
        super().__init__(measurements)
        self.bundles = [(b.digest, base64.b64decode(b.envelope)) for b in bundles]


class RunReply(FrozenModel):
    """What the child measured, and the bytes its budget counted."""

    document: RunDocument
    measurements: list[Measurement]
    bundles: list[SealedBundle]
    used: int
    skipped: int


class ChildRunError(RuntimeError):
    """The child process ended without a reply."""


async def run_in_child(
    config: ProbeConfig,
    platforms: Sequence[Platform],
    *,
    budget: DataBudget,
    state_dir: Path,
    country: str | None = None,
) -> tuple[RunDocument, SealedMeasurements]:
    """``probe.run.run_check`` in a child process, its measurements sealed there with the keys in
    ``state_dir``; ``budget`` counts what the child moved."""
    request = RunRequest(
        config=config,
        platforms=list(platforms),
        limit=budget.remaining,
        state_dir=state_dir,
        country=country,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "probe.daemon.run_child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await process.communicate(request.model_dump_json().encode())
    except BaseException:  # cancelled (the daemon is stopping): the run ends with it
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0 or not out:
        raise ChildRunError(f"the run's process ended with status {process.returncode}")
    reply = RunReply.model_validate_json(out)
    budget.used += reply.used
    budget.skipped += reply.skipped
    return reply.document, SealedMeasurements(reply.measurements, reply.bundles)


async def _child(request: RunRequest) -> RunReply:
    from probe.evidence.bundle import build, seal
    from probe.evidence.keys import KeyStore
    from probe.run import run_check

    budget = DataBudget(request.limit)
    document, measurements = await run_check(request.config, request.platforms, budget=budget)
    by_asn: dict[int | None, list[Measurement]] = {}
    for m in measurements:
        by_asn.setdefault(m.vantage.asn, []).append(m)
    keys = KeyStore(request.state_dir)
    bundles = []
    for asn, group in by_asn.items():
        key = keys.for_network(asn)
        sealed = seal(build(group, key, country=request.country), key)
        envelope = base64.b64encode(sealed.to_bytes()).decode()
        bundles.append(SealedBundle(digest=sealed.digest, envelope=envelope))
    return RunReply(
        document=document,
        measurements=measurements,
        bundles=bundles,
        used=budget.used,
        skipped=budget.skipped,
    )


def main() -> None:
    """Read a ``RunRequest`` on stdin, measure, write the ``RunReply`` on stdout."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    request = RunRequest.model_validate_json(sys.stdin.buffer.read())
    reply = asyncio.run(_child(request))
    sys.stdout.write(reply.model_dump_json())


if __name__ == "__main__":
    main()
