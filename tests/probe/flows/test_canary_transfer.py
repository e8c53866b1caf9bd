"""The run's canary control transfer: started once by the first endpoint, shared by all of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from probe.budget import DataBudget
from probe.config import ProbeConfig
from probe.flows import canary_transfer
from probe.flows.canary_transfer import CanaryTransfer, with_transfer
from probe.flows.plan import EndpointPlan, MeasureSettings
from probe.model import Observations, ThroughputObservation, Verdict
from probe.platforms import Platform
from probe.run import run_check
from tests.probe.steps.servers import HTTPServer, Request

pytestmark = pytest.mark.anyio

SIZE = 4 * 1024 * 1024


async def large(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n".encode())
    for _ in range(SIZE // 65536):
        writer.write(b"x" * 65536)
        await writer.drain()


@pytest.fixture
async def web() -> AsyncIterator[HTTPServer]:
    server = await HTTPServer({"/large": large}).start()
    yield server
    server.close()


async def test_started_once_however_many_endpoints_begin_it(web: HTTPServer) -> None:
    """Every endpoint calls begin; one download of half a transfer's budget, shared."""
    settings = MeasureSettings(throughput_bytes=128 * 1024)
    shared = CanaryTransfer(f"http://127.0.0.1:{web.port}/large", settings)
    assert await shared.result() is None  # not started: nothing to wait for
    with canary_transfer.active((shared,)):
        canary_transfer.begin(("up",))  # an upload does not start the download control
        assert not shared.started
        for _ in range(3):
            canary_transfer.begin()
    first, second = await asyncio.gather(shared.result(), shared.result())
    assert first is second and first is not None
    assert 1 == len(web.hosts)
    assert first.control and first.completed and 200 == first.status
    assert 64 * 1024 <= first.bytes < 64 * 1024 + 70000


async def test_begin_outside_a_run_does_nothing() -> None:
    """A flow measured alone (the control vantage, a test) has no canary control to start."""
    canary_transfer.begin()


def _transfer(url: str) -> ThroughputObservation:
    return ThroughputObservation(url=url, control=True, bytes=100, t0=0.0, t=1.0)


def test_the_transfer_joins_its_canary_or_gets_an_entry() -> None:
    canaries = {"example.com": Observations()}
    joined = with_transfer(
        canaries, "https://example.com/big", _transfer("https://example.com/big")
    )
    assert ["example.com"] == list(joined)
    assert 1 == len(joined["example.com"].throughput)
    apart = with_transfer(canaries, "https://speed.test/x", _transfer("https://speed.test/x"))
    assert {"example.com", "speed.test"} == set(apart)
    assert () == canaries["example.com"].throughput  # the run's dict is not changed


async def test_a_run_shares_one_canary_transfer_and_counts_it_once(web: HTTPServer) -> None:
    """Two endpoints transfer: one canary control download, in both endpoints' canaries."""
    config = ProbeConfig.model_validate(
        {
            "canaries": ["https://canary.test/"],
            "throughput_canary": f"http://127.0.0.1:{web.port}/large",
            "upload_canary": None,
            "budget": {"run_bytes": 1024 * 1024, "throughput_bytes": 128 * 1024},
        }
    )
    platform = Platform.model_validate(
        {
            "name": "alpha",
            "title": "Alpha",
            "domains": ["alpha.test"],
            "throughput": True,
            "endpoints": [
                {"url": f"https://alpha.test/{n}", "throughput_url": f"https://alpha.test/{n}.bin"}
                for n in ("a", "b")
            ],
        }
    )
    seen: list[dict[str, Observations]] = []

    async def measure(
        plan: EndpointPlan, settings: MeasureSettings, *, with_throughput: bool = True
    ) -> Observations:
        canary_transfer.begin()  # as the web flow does when its transfers start
        moved = ThroughputObservation(url=plan.url, bytes=1000, completed=True, t0=0.0, t=0.1)
        return Observations(throughput=(moved,))

    async def measure_canary(url: str, settings: MeasureSettings) -> Observations:
        return Observations()

    def classify(
        plan: EndpointPlan,
        local: Observations,
        control: Observations | None,
        canaries: dict[str, Observations],
    ) -> Verdict:
        seen.append(canaries)
        return Verdict(kind="reachable", confidence=0.8)

    budget = DataBudget(config.budget.run_bytes)
    await run_check(
        config,
        [platform],
        measure=measure,
        measure_canary=measure_canary,
        classify=classify,
        budget=budget,
    )
    assert 1 == len(web.hosts)
    transfers = [t for canaries in seen for c in canaries.values() for t in c.throughput]
    assert 2 == len(transfers) and transfers[0] == transfers[1]
    canary_bytes = transfers[0].bytes
    assert canary_bytes >= 64 * 1024
    assert 0 == budget.reserved
    assert 2 * 1000 + canary_bytes == budget.used
