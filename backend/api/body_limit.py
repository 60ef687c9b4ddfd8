"""The request body limit, enforced on the byte stream before anything else reads the body.

Outermost middleware (pure ASGI): CORS, authentication, routing and parsing all come after it.
A `Content-Length` over the limit is refused at once; otherwise the body is read here, message by
message, and refused with 413 as soon as the running count passes the limit, so no more than the
limit (plus the one message that crossed it) is ever held, whatever the route or method, chunked
or not. A body within the limit is handed on unchanged.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = json.dumps({"detail": "request body too large"}).encode()


class BodyLimit:
    """Refuse (413) any HTTP request whose body is over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was complete
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await _refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


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


async def _refuse(send: Send) -> None:
    # `connection: close`: the rest of the body is never read, so the connection cannot be reused.
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
