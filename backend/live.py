"""The live stream's fan-out: typed messages (contracts/stream.py), one queue per SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from contracts.stream import AlarmMessage, AnyStreamMessage, AvailabilityMessage, EventMessage
from contracts.topics import Channel

if TYPE_CHECKING:
    from backend.alarms import AlarmChange
    from backend.ingest.persist import BatchResult

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

    def publish(self, message: AnyStreamMessage) -> None:
        """Callable from any thread."""
        if self._loop is None or not self._clients:
            return
        # Python values, not JSON: the SSE response encodes them as it always has.
        frame = (message.TOPIC, message.model_dump())
        with contextlib.suppress(RuntimeError):  # the loop closes during shutdown
            self._loop.call_soon_threadsafe(self._fan_out, frame)

    def publish_batch(self, result: BatchResult) -> None:
        """A committed ingest batch's messages, if anyone is listening."""
        if self._loop is None or not self._clients:
            return
        for message in batch_messages(result):
            self.publish(message)

    def _fan_out(self, frame: tuple[str, dict[str, Any]]) -> None:
        with self._lock:
            clients = list(self._clients)
        for queue in clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)


def alarm_message(change: AlarmChange) -> AlarmMessage:
    return AlarmMessage.model_validate(asdict(change))


_EVENT_FIELDS = tuple(EventMessage.model_fields)
_AVAILABILITY_FIELDS = tuple(AvailabilityMessage.model_fields)


def batch_messages(result: BatchResult) -> Iterator[AnyStreamMessage]:
    """What a committed ingest batch tells the live stream: new events (events channel only),
    alarm changes, availability changes."""
    for row in result.new_events:
        if row["channel"] == Channel.EVENTS.value:
            # Rows of validated envelopes, on the ingest thread's path: no second validation.
            yield EventMessage.model_construct(**{k: row[k] for k in _EVENT_FIELDS})
    for change in result.alarm_changes:
        yield alarm_message(change)
    for item in result.availability:
        yield AvailabilityMessage.model_validate(
            {k: item[k] for k in _AVAILABILITY_FIELDS if k in item}
        )
