"""The lab's HTTP server core reads requests with h11: framing, pipelining and bad input."""

from __future__ import annotations

import asyncio

import pytest

from censornet.servers.http import BadRequest, RequestReader, parse_head


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.anyio
async def test_pipelined_requests_with_chunked_and_sized_bodies() -> None:
    requests = RequestReader(
        _reader(
            b"POST /up HTTP/1.1\r\nHost: X.com:80\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"PUT /b?q=1 HTTP/1.1\r\nHost: x.com\r\nContent-Length: 4\r\n\r\nwxyz"
            b"GET / HTTP/1.0\r\n\r\n"
        )
    )
    first = await requests.next()
    assert first is not None
    assert (first.method, first.path, first.host, first.body) == ("POST", "/up", "x.com", b"abcde")
    second = await requests.next()
    assert second is not None
    assert (second.path, second.query, second.body, second.keep_alive) == (
        "/b",
        "q=1",
        b"wxyz",
        True,
    )
    third = await requests.next()
    assert third is not None and third.version == "HTTP/1.0" and not third.keep_alive
    assert await requests.next() is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x",  # cut in the head
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",  # cut in the body
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
async def test_bad_or_truncated_requests_are_refused(data: bytes) -> None:
    with pytest.raises(BadRequest):
        await RequestReader(_reader(data)).next()


def test_a_head_keeps_its_raw_bytes_for_the_proxy() -> None:
    head = b"GET http://x.com/ HTTP/1.1\r\nHost: x.com\r\nX-Odd:  spaced \r\n\r\n"
    request = parse_head(head)
    assert request.head == head and request.headers["x-odd"] == "spaced"
    with pytest.raises(BadRequest):
        parse_head(b"GET / HTTP/1.1\r\nHost: x.com\r\n")  # no blank line: not a whole head
