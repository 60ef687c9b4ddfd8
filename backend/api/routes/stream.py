"""The live stream (server-sent events): new events, alarm changes, availability changes, the
street's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from backend.api.deps import CtxDep

router = APIRouter(tags=["stream"])

KEEPALIVE_S = 15.0


@router.get("/stream", response_class=EventSourceResponse)
async def stream(ctx: CtxDep) -> AsyncIterable[ServerSentEvent]:
    """`event: event | alarm | availability | clock`, `data:` JSON. Comments keep proxies
    open."""
    queue = ctx.live.subscribe()
    try:
        yield ServerSentEvent(comment="connected")
        while True:
            try:
                topic, payload = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEvent(comment="keepalive")
                continue
            yield ServerSentEvent(event=topic, data=payload)
    finally:
        ctx.live.unsubscribe(queue)
