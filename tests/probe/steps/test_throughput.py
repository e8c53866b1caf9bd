"""throughput.download/upload: samples, byte and time budgets, stalls, SNI control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import trustme

from probe.model.failures import Failure
from probe.net.clock import Clock, deadline_in
from probe.steps import throughput
from tests.probe.steps.servers import HTTPServer, Request, respond, server_context

pytestmark = pytest.mark.anyio

SIZE = 4 * 1024 * 1024


async def fast(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n".encode())
    for _ in range(SIZE // 65536):
        writer.write(b"x" * 65536)
        await writer.drain()


async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
    """About 80 KB/s: 8 KiB every 100 ms."""
    writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n".encode())
    for _ in range(SIZE // 8192):
        writer.write(b"x" * 8192)
        await writer.drain()
        await asyncio.sleep(0.1)


async def stall(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n".encode())
    writer.write(b"x" * 20000)
    await writer.drain()
    await asyncio.sleep(5)


async def small(request: Request, writer: asyncio.StreamWriter) -> None:
    respond(writer, 200, b"y" * 1000)


received: list[int] = []


async def sink(request: Request, writer: asyncio.StreamWriter) -> None:
    received.append(len(request.body))
    respond(writer, 200, b"ok")


ROUTES = {"/fast": fast, "/slow": slow, "/stall": stall, "/small": small, "/up": sink}


@pytest.fixture
async def web() -> AsyncIterator[HTTPServer]:
    server = await HTTPServer(ROUTES).start()
    yield server
    server.close()


async def test_byte_budget_completes(web: HTTPServer) -> None:
    """A fast transfer stops at the byte budget and is completed."""
    obs = await throughput.download(
        f"http://x.test:{web.port}/fast",
        ip="127.0.0.1",
        byte_budget=256 * 1024,
        deadline=deadline_in(2),
        clock=Clock(),
    )
    assert obs.completed
    assert obs.failure is None
    assert 256 * 1024 <= obs.bytes < 256 * 1024 + 70000
    assert obs.ttfb is not None
    assert obs.kbps > 0


async def test_whole_small_object_completes(web: HTTPServer) -> None:
    """An object smaller than the budget completes when it ends."""
    obs = await throughput.download(
        f"http://x.test:{web.port}/small",
        ip="127.0.0.1",
        byte_budget=256 * 1024,
        deadline=deadline_in(2),
        clock=Clock(),
    )
    assert obs.completed
    assert 1000 == obs.bytes


@pytest.mark.slow
async def test_time_budget_samples_a_slow_transfer(web: HTTPServer) -> None:
    """A slow transfer is cut at the time budget, without failure, sampled every ~100 ms.

    Bounds follow from the server's pace (at most 8 KiB per 100 ms) and the deadline, not from how
    fast this machine happens to be: a loaded machine sends less, never more.
    """
    loop = asyncio.get_running_loop()
    deadline = deadline_in(1.0)
    started = loop.time()
    obs = await throughput.download(
        f"http://x.test:{web.port}/slow",
        ip="127.0.0.1",
        byte_budget=SIZE,
        deadline=deadline,
        clock=Clock(),
    )
    returned = loop.time()
    assert not obs.completed
    assert obs.failure is None
    assert returned >= deadline  # cut by the time budget, not ended early
    assert 0 < obs.seconds <= returned - started
    times = [t for t, _ in obs.samples]
    counts = [count for _, count in obs.samples]
    assert 1 <= len(obs.samples) <= 12  # one sample per ~100 ms at most
    assert times == sorted(times) and counts == sorted(counts)
    assert 0 < obs.bytes <= 8192 * (int(obs.seconds / 0.1) + 2)
    assert 0 < obs.kbps < 1100


async def test_stall_ends_the_transfer(web: HTTPServer) -> None:
    """No byte for the stall window after some arrived: generic_timeout_error."""
    obs = await throughput.download(
        f"http://x.test:{web.port}/stall",
        ip="127.0.0.1",
        byte_budget=SIZE,
        deadline=deadline_in(3),
        clock=Clock(),
        stall=0.5,
    )
    assert Failure.TIMEOUT == obs.failure
    assert 20000 == obs.bytes
    assert obs.seconds < 1.5


async def test_benign_sni_control(ca: trustme.CA) -> None:
    """The control transfer sends the benign SNI to the same address, Host unchanged."""
    server = await HTTPServer(ROUTES).start(tls=server_context(ca, "x.test"))
    try:
        obs = await throughput.download(
            f"https://x.test:{server.port}/small",
            ip="127.0.0.1",
            sni="example.test",
            control=True,
            byte_budget=4096,
            deadline=deadline_in(2),
            clock=Clock(),
        )
    finally:
        server.close()
    assert obs.completed
    assert obs.control
    assert "example.test" == obs.sni
    assert ["example.test"] == server.snis
    assert [f"x.test:{server.port}"] == server.hosts


async def test_upload_sends_the_budget(web: HTTPServer) -> None:
    """An upload streams the byte budget and completes on the server's 2xx."""
    received.clear()
    obs = await throughput.upload(
        f"http://x.test:{web.port}/up",
        ip="127.0.0.1",
        byte_budget=100_000,
        deadline=deadline_in(2),
        clock=Clock(),
    )
    assert obs.completed
    assert "up" == obs.direction
    assert 100_000 == obs.bytes
    assert [100_000] == received


async def test_refused_transfer_fails() -> None:
    """Nothing listening: the failure is recorded and nothing moved."""
    from tests.probe.steps.servers import free_port

    obs = await throughput.download(
        f"http://x.test:{free_port()}/fast",
        ip="127.0.0.1",
        byte_budget=1000,
        deadline=deadline_in(1),
        clock=Clock(),
    )
    assert Failure.CONNECTION_REFUSED == obs.failure
    assert 0 == obs.bytes


async def test_samples_count_wire_bytes_and_never_decrease(web: HTTPServer) -> None:
    """Samples are cumulative wire bytes (TCP_INFO on Linux): at least what was read, monotone."""
    obs = await throughput.download(
        f"http://x.test:{web.port}/fast",
        ip="127.0.0.1",
        byte_budget=256 * 1024,
        deadline=deadline_in(2),
        clock=Clock(),
        interval=0.01,
    )
    counts = [count for _, count in obs.samples]
    assert counts == sorted(counts)
    assert counts[-1] >= obs.bytes


async def test_an_early_answer_counts_only_what_the_server_acknowledged() -> None:
    """A server that answers before reading the body (then reads it slowly): the upload ends at
    the answer with the bytes acknowledged by then, not those still in socket buffers."""
    import socket

    async def answer_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        chunk = b"-"
        while chunk:
            await asyncio.sleep(0.05)  # slowly, and the stream buffers little (limit)
            chunk = await reader.read(4096)
        writer.close()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    listener.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(answer_first, sock=listener, limit=1024)
    try:
        obs = await throughput.upload(
            f"http://x.test:{listener.getsockname()[1]}/up",
            ip="127.0.0.1",
            byte_budget=100_000,
            deadline=deadline_in(5),
            clock=Clock(),
        )
    finally:
        server.close()
    assert 200 == obs.status
    assert not obs.completed
    assert 0 < obs.bytes < 100_000
