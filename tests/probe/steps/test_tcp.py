"""tcp.connect: success, refused and timeout, over IPv4 and IPv6 loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from probe.model.failures import Failure
from probe.net.clock import Clock, deadline_in
from probe.steps import tcp
from tests.probe.steps.servers import blackhole, free_port

pytestmark = pytest.mark.anyio


async def _listen(host: str) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(lambda r, w: w.close(), host, 0)
    return server, server.sockets[0].getsockname()[1]


async def test_connect_ok() -> None:
    """A listening port connects, with no failure and a short time."""
    server, port = await _listen("127.0.0.1")
    try:
        obs = await tcp.connect("127.0.0.1", port, deadline=deadline_in(2), clock=Clock())
    finally:
        server.close()
    assert obs.failure is None
    assert ("127.0.0.1", port) == (obs.ip, obs.port)
    assert obs.t - obs.t0 < 1


async def test_connect_ipv6() -> None:
    """IPv6 addresses connect the same way."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server, port = await _listen("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        obs = await tcp.connect("::1", port, deadline=deadline_in(2), clock=Clock())
    finally:
        server.close()
    assert obs.failure is None


async def test_refused() -> None:
    """A closed port is connection_refused."""
    obs = await tcp.connect("127.0.0.1", free_port(), deadline=deadline_in(2), clock=Clock())
    assert Failure.CONNECTION_REFUSED == obs.failure


async def test_unanswered_syn_is_a_timeout() -> None:
    """A SYN nobody answers ends at the deadline as generic_timeout_error."""
    listener, fillers, port = blackhole()
    try:
        obs = await tcp.connect("127.0.0.1", port, deadline=deadline_in(0.5), clock=Clock())
    finally:
        for sock in [listener, *fillers]:
            sock.close()
    assert Failure.TIMEOUT == obs.failure
    assert 0.4 < obs.t - obs.t0 < 1.0
