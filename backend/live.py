"""The live stream's fan-out: typed messages (contracts/stream.py) encoded once into SSE frames,
kept in one bounded buffer that every subscriber reads through its own cursor.

Why a shared buffer and cursors: a subscriber costs the producer nothing. Publishing appends each
frame once (encoded in the publishing thread, not on the event loop) and wakes the subscribers
that are waiting; it never awaits a subscriber and never touches a subscriber's backlog. A
subscriber's backlog is the frames between its cursor and the newest, so no subscriber is ever
more than the buffer behind: when the oldest frames it has not read are dropped, it is told how
many it lost (`resync`, contracts/stream.py) before its next frames. Memory: the buffer (at most
`stream_buffer_bytes` of frames) plus, per subscriber, a cursor and what its connection holds
(backend/api/routes/stream.py bounds that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from fastapi.encoders import jsonable_encoder

from contracts.stream import (
    AlarmMessage,
    AnyStreamMessage,
    AvailabilityMessage,
    EventMessage,
    ResyncMessage,
)
from contracts.topics import Channel

if TYPE_CHECKING:
    from backend.alarms import AlarmChange
    from backend.config import Settings
    from backend.ingest.persist import BatchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamLimits:
    """How far behind a subscriber may fall (frames and bytes of the shared buffer) and how many
    subscribers there may be at once."""

    buffer_frames: int = 2048
    buffer_bytes: int = 2 * 1024 * 1024
    max_subscribers: int = 500

    @classmethod
    def of(cls, settings: Settings) -> StreamLimits:
        return cls(
            settings.stream_buffer_frames,
            settings.stream_buffer_bytes,
            settings.stream_max_subscribers,
        )


def encode(message: AnyStreamMessage) -> bytes:
    """One SSE frame: `event: <TOPIC>` and `data: <JSON>` (the encoding the stream has always
    used: FastAPI's JSON encoder, then `json.dumps`)."""
    data = json.dumps(jsonable_encoder(message.model_dump()))
    return f"event: {message.TOPIC}\ndata: {data}\n\n".encode()


class Subscriber:
    """A cursor into the shared buffer: the sequence number of the next frame to send."""

    __slots__ = ("next_seq",)

    def __init__(self, next_seq: int) -> None:
        self.next_seq = next_seq


class Broadcaster:
    """Publish from any thread; subscribe, read and wait on the API's event loop only."""

    def __init__(self, limits: StreamLimits | None = None) -> None:
        self.limits = limits or StreamLimits()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscriber] = set()
        # frames[i] has sequence number base + i; frames before `head` are dropped.
        self._frames: list[bytes] = []
        self._base = 0
        self._head = 0
        self._bytes = 0
        self._changed: asyncio.Future[None] | None = None
        # For /metrics: what the stream carried, lost and refused, since the start.
        self.frames = 0
        self.resyncs = 0
        self.missed = 0
        self.stalled = 0
        self.refused = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    # -- producers (any thread) ----------------------------------------------------------------
    def publish(self, message: AnyStreamMessage) -> None:
        self.publish_many((message,))

    def publish_batch(self, result: BatchResult) -> None:
        """A committed ingest batch's messages, if anyone is listening."""
        self.publish_many(batch_messages(result))

    def publish_many(self, messages: Iterable[AnyStreamMessage]) -> None:
        """Encodes in the calling thread, then hands the frames to the loop in one call."""
        if self._loop is None or not self._subscribers:
            return
        frames = [encode(m) for m in messages]
        if frames:
            with contextlib.suppress(RuntimeError):  # the loop closes during shutdown
                self._loop.call_soon_threadsafe(self._append, frames)

    # -- the event loop --------------------------------------------------------------------------
    def _append(self, frames: list[bytes]) -> None:
        self.frames += len(frames)
        if not self._subscribers:
            return
        for frame in frames:
            self._frames.append(frame)
            self._bytes += len(frame)
        # The oldest go first; the newest frame always stays.
        while len(self._frames) - self._head > 1 and (
            len(self._frames) - self._head > self.limits.buffer_frames
            or self._bytes > self.limits.buffer_bytes
        ):
            self._bytes -= len(self._frames[self._head])
            self._frames[self._head] = b""
            self._head += 1
        if self._head > 1024 and self._head * 2 > len(self._frames):
            del self._frames[: self._head]
            self._base += self._head
            self._head = 0
        if self._changed is not None:
            self._changed.set_result(None)
            self._changed = None

    def subscribe(self) -> Subscriber | None:
        """A new subscriber, reading from the next frame on; None when there are
        `max_subscribers` already."""
        if len(self._subscribers) >= self.limits.max_subscribers:
            self.refused += 1
            return None
        if not self._subscribers:  # nobody reads what is buffered: free it
            self._frames, self._base, self._head, self._bytes = [], self._end(), 0, 0
        sub = Subscriber(self._end())
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber, stalled: bool = False) -> None:
        self._subscribers.discard(sub)
        self.stalled += stalled
        if not self._subscribers:
            self._frames, self._base, self._head, self._bytes = [], self._end(), 0, 0

    def _end(self) -> int:
        return self._base + len(self._frames)

    def take(self, sub: Subscriber, max_bytes: int) -> bytes:
        """The subscriber's next frames, at most `max_bytes` (at least one frame), preceded by a
        `resync` frame if the buffer dropped frames it had not read; b"" when it is up to date."""
        first = self._base + self._head
        parts: list[bytes] = []
        if sub.next_seq < first:
            lost = first - sub.next_seq
            parts.append(encode(ResyncMessage(missed=lost)))
            self.resyncs += 1
            self.missed += lost
            sub.next_seq = first
        i, size = sub.next_seq - self._base, 0
        while i < len(self._frames) and (size == 0 or size + len(self._frames[i]) <= max_bytes):
            parts.append(self._frames[i])
            size += len(self._frames[i])
            i += 1
        sub.next_seq = self._base + i
        return b"".join(parts)

    def changed(self) -> asyncio.Future[None]:
        """Done when the next frames are appended (one future shared by every waiter)."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed


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
