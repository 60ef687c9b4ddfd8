"""The live stream's fan-out: the ingest thread publishes, each SSE client has its own queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

CLIENT_QUEUE_MAX = 1000


class Broadcaster:
    """Thread-safe publish into the API's event loop; slow clients lose their oldest items
    (the stream is a view; the API's lists are the record)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(CLIENT_QUEUE_MAX)
        with self._lock:
            self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        with self._lock:
            self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Callable from any thread."""
        if self._loop is None or not self._clients:
            return
        with contextlib.suppress(RuntimeError):  # the loop closes during shutdown
            self._loop.call_soon_threadsafe(self._fan_out, (topic, payload))

    def _fan_out(self, frame: tuple[str, dict[str, Any]]) -> None:
        with self._lock:
            clients = list(self._clients)
        for queue in clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)
