"""One limit on every request body, enforced before routing, parsing and authentication.

An ASGI middleware: a declared ``Content-Length`` over the limit is refused at once (413, nothing
read); otherwise the body is read as it streams (chunked or not) and refused as soon as it passes
the limit, then handed to the app whole. The bundle route has its own, larger limit
(``max_bundle_bytes``); every other route gets ``max_body_bytes``. A body never occupies more
memory than its route's limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Wraps ``app``: ``limit_for(path)`` gives each path's limit in bytes."""

    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str], int], on_refusal: Callable[[], None]
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        self.on_refusal()
        body = json.dumps(
            {"error": "too_large", "detail": f"request bodies here are limited to {limit} bytes"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
