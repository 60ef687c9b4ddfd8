"""The request body limit, enforced on the byte stream before anything else reads the body.

Outermost middleware (pure ASGI): CORS, authentication, routing and parsing all come after it.
A `Content-Length` over the limit is refused at once; otherwise the body is read here, message by
message, and refused with 413 as soon as the running count passes the limit, so no more than the
limit (plus the one message that crossed it) is ever held, whatever the route or method, chunked
or not. A body within the limit is handed on unchanged. The whole body must arrive within
`timeout_s`, or the answer is 408: a client that trickles its body cannot hold a connection (and
a slot of the server's connection limit) for ever.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = json.dumps({"detail": "request body too large"}).encode()
TOO_SLOW = json.dumps({"detail": "request body not received in time"}).encode()


class BodyLimit:
    """Refuse (413) any HTTP request whose body is over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, TOO_LARGE)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await _refuse(send, 408, TOO_SLOW)
            return
        if body is None:
            return  # the client went away before its body was complete
        if len(body) > self.max_bytes:
            await _refuse(send, 413, TOO_LARGE)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body; None if the client went; stops at the first byte past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body: bytes = message.get("body", b"")
            size += len(body)
            chunks.append(body)
            if size > self.max_bytes or not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1")).strip()
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, then the server's own messages (a disconnect, for a long response)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def _refuse(send: Send, status: int, body: bytes) -> None:
    # `connection: close`: the rest of the body is never read, so the connection cannot be reused.
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
