"""The live stream's shared buffer (backend/live.py): bounded, and a subscriber that falls behind
is told how many messages it lost before its next ones."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from backend.live import Broadcaster, StreamLimits, encode
from contracts.stream import EventMessage


def event(n: int, size: int = 0) -> EventMessage:
    return EventMessage(
        event_id=f"e{n:04d}",
        device_id="gate-north",
        kind="gate",
        type="entry-granted",
        ts=datetime(2026, 12, 1, tzinfo=UTC),
        injected=False,
        data={"pad": "x" * size},
    )


def frames(chunk: bytes) -> list[tuple[str, dict[str, object]]]:
    out = []
    for frame in chunk.decode().split("\n\n")[:-1]:
        event_line, data_line = frame.split("\n")
        out.append((event_line.removeprefix("event: "), json.loads(data_line[6:])))
    return out


async def publish(live: Broadcaster, first: int, count: int, size: int = 0) -> None:
    changed = live.changed()
    live.publish_many(event(n, size) for n in range(first, first + count))
    await changed


def test_a_subscriber_behind_the_buffer_gets_resync_with_the_count_then_the_newest() -> None:
    async def main() -> None:
        live = Broadcaster(StreamLimits(buffer_frames=10, max_subscribers=2))
        live.bind(asyncio.get_running_loop())
        slow, fast = live.subscribe(), live.subscribe()
        assert slow is not None and fast is not None
        await publish(live, 0, 5)
        assert [d["event_id"] for _, d in frames(live.take(fast, 1 << 20))] == [
            f"e{n:04d}" for n in range(5)
        ]
        await publish(live, 5, 25)
        got = frames(live.take(slow, 1 << 20))
        assert got[0] == ("resync", {"missed": 20})
        assert [d["event_id"] for _, d in got[1:]] == [f"e{n:04d}" for n in range(20, 30)]
        assert frames(live.take(fast, 1 << 20))[0] == ("resync", {"missed": 15})
        assert live.take(slow, 1 << 20) == b""  # up to date: nothing, no second resync
        assert (live.resyncs, live.missed) == (2, 35)

    asyncio.run(main())


def test_the_buffer_is_bounded_in_bytes_and_reads_come_in_bounded_chunks() -> None:
    async def main() -> None:
        frame_size = len(encode(event(0, 1000)))
        live = Broadcaster(StreamLimits(buffer_frames=1000, buffer_bytes=4 * frame_size))
        live.bind(asyncio.get_running_loop())
        sub = live.subscribe()
        assert sub is not None
        await publish(live, 0, 100, size=1000)
        assert live.buffered_bytes <= 4 * frame_size
        first = frames(live.take(sub, 2 * frame_size))
        assert first[0] == ("resync", {"missed": 96}) and len(first) == 3
        assert len(frames(live.take(sub, 1))) == 1  # at least one frame, whatever the limit
        live.unsubscribe(sub)
        assert live.buffered_bytes == 0 and live.clients == 0

    asyncio.run(main())


def test_subscribers_beyond_the_limit_are_refused() -> None:
    live = Broadcaster(StreamLimits(max_subscribers=2))
    subs = [live.subscribe() for _ in range(3)]
    assert subs[2] is None and live.refused == 1 and live.clients == 2
    assert subs[0] is not None
    live.unsubscribe(subs[0], stalled=True)
    assert live.subscribe() is not None and live.stalled == 1
