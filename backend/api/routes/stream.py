"""The live stream (server-sent events): new events, alarm changes, availability changes, the
street's clock; and for a subscriber that fell behind, how many messages it lost (`resync`).

Each connection is a cursor into the shared buffer of backend/live.py. It sends what it has not
sent yet in chunks of at most CHUNK_BYTES, awaiting the connection after each, so what one
connection holds unsent is bounded: the server's write buffer (the server pauses writing above
CHUNK_BYTES, 64 KiB if the transport is not found) plus one chunk, and the kernel's send buffer
is set to SEND_BUFFER_BYTES. A connection that accepts nothing for `stream_stall_timeout_s` is
closed at once (aborted, not flushed first: a peer that never reads would hold it forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from backend.api.deps import CtxDep
from backend.live import Broadcaster, Subscriber

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])

KEEPALIVE_S = 15.0
CHUNK_BYTES = 16 * 1024
# The kernel's send buffer per stream connection (Linux doubles it): without a bound it grows up
# to net.ipv4.tcp_wmem's maximum (4 MiB here) for a client that does not read.
SEND_BUFFER_BYTES = 64 * 1024
CONNECTED = b": connected\n\n"
KEEPALIVE = b": keepalive\n\n"


class LiveStreamResponse(Response):
    """`text/event-stream` for one subscriber, until the client goes or stalls."""

    media_type = "text/event-stream"

    def __init__(self, live: Broadcaster, sub: Subscriber, stall_timeout_s: float) -> None:
        self.live, self.sub, self.stall_timeout_s = live, sub, stall_timeout_s
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _transport_of(scope)
        if transport is None:
            # Then the buffers are the server's defaults and a stalled client is closed only
            # after flushing (docs/security.md): say so, it weakens the stream's limits.
            log.warning(
                "live stream: no transport found for %s; buffers not capped", scope.get("client")
            )
        else:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                transport.set_write_buffer_limits(high=CHUNK_BYTES)
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        gone = asyncio.ensure_future(_disconnected(receive))
        stalled = False
        try:
            stalled = await self._pump(send, gone)
            if stalled and transport is not None:
                transport.abort()
                await asyncio.sleep(0)  # the server learns the connection is lost
            if stalled:
                log.info(
                    "live-stream client %s accepted nothing: disconnected", scope.get("client")
                )
        finally:
            gone.cancel()
            if gone.done() and not gone.cancelled():
                gone.exception()  # retrieved: a receive that failed is a client gone
            self.live.unsubscribe(self.sub, stalled=stalled)

    async def _pump(self, send: Send, gone: asyncio.Future[None]) -> bool:
        """Sends until the client disconnects (False) or stalls (True)."""
        started = False
        chunk = CONNECTED
        while True:
            try:
                async with asyncio.timeout(self.stall_timeout_s):
                    if not started:
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": self.raw_headers,
                            }
                        )
                        started = True
                    # A new message each time: a middleware may hold the last one still.
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except TimeoutError:
                return True
            except OSError:  # the client went while we wrote
                return False
            if gone.done():
                return False
            chunk = self.live.take(self.sub, CHUNK_BYTES)
            if chunk:
                continue
            changed = self.live.changed()
            done, _ = await asyncio.wait(
                {changed, gone}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if gone in done:
                return False
            if not done:
                chunk = KEEPALIVE


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _transport_of(scope: Scope) -> Any:
    """The connection's transport (ASGI offers no way to reach it): the one on the running loop
    whose protocol serves this request's scope, else whose addresses are the request's; or None.
    Without it the kernel's send buffer grows as it likes and a stalled connection is closed
    after flushing (bounded: one write buffer), when the peer reads or goes."""
    transports: Any = getattr(asyncio.get_running_loop(), "_transports", None)
    if transports is None:
        return None
    client, server = scope.get("client"), scope.get("server")
    with contextlib.suppress(Exception):
        for transport in list(transports.values()):
            if transport.is_closing():
                continue
            if getattr(transport.get_protocol(), "scope", None) is scope:
                return transport
            peer = transport.get_extra_info("peername")
            own = transport.get_extra_info("sockname")
            if (
                client
                and server
                and peer
                and own
                and tuple(peer[:2]) == tuple(client)
                and own[1] == server[1]
            ):
                return transport
    return None


# What FastAPI documents for an SSE route (OpenAPI 3.2's itemSchema): the route answers with
# its own response class, so it is stated here.
_SSE_ITEM = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


@router.get(
    "/stream",
    response_class=LiveStreamResponse,
    status_code=200,
    responses={
        200: {
            "description": "Successful Response",
            "content": {"text/event-stream": {"itemSchema": _SSE_ITEM}},
        },
        503: {"description": "Too many live-stream subscribers; retry later"},
    },
)
async def stream(ctx: CtxDep) -> Response:
    """`event: event | alarm | availability | clock | resync`, `data:` JSON. Comments keep
    proxies open. A subscriber that falls further behind than the stream's buffer first gets
    `resync` with the count it missed; one that accepts nothing for a while is disconnected."""
    s = ctx.settings
    sub = ctx.live.subscribe()
    if sub is None:
        return JSONResponse(
            {"detail": f"too many live-stream subscribers (at most {s.stream_max_subscribers})"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return LiveStreamResponse(ctx.live, sub, s.stream_stall_timeout_s)
