"""A device's short memory of what the broker acknowledged, to publish again after a reconnect.

Mosquitto 2.0 acknowledges a QoS 1 PUBLISH first and writes its persistence file afterwards, at
the end of the same turn of its main loop (`autosave_on_changes true`, `autosave_interval 1` in
broker_config/mosquitto.conf). A broker killed with SIGKILL in that instant has acknowledged a
message it never saved: the device thinks it delivered it, paho forgets it, and it is lost.

The outbox closes that hole from the device's side. It remembers the messages of the channels
that carry envelopes (events, telemetry, command results) for a few seconds after their
acknowledgement; whenever the session connects again after losing its connection, it publishes
that window again: the same bytes, hence the same `event_id`. The backend stores each event id
once (insert-or-ignore), counts the copy as a duplicate and does not flag it as a replayed
sequence number (same event id), so a resend that was not needed costs only a duplicate.

Memory: only the already-serialised payload (the very bytes object paho sent, so nothing is
copied) and the acknowledgement time are kept, per device at most `max_count` messages and
`max_bytes` bytes, in a plain list (empty lists are small: 5,000 devices must stay cheap).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from contracts.topics import Channel

# The channels whose messages are envelopes with an event id: a copy is harmless to the backend.
# Availability (state) is retained and newest-wins, commands are never published by devices.
RESEND_CHANNELS = frozenset({Channel.EVENTS, Channel.TELEMETRY, Channel.COMMAND_RESULTS})

# How long after its acknowledgement a message is kept, counted back from the NEWEST
# acknowledgement the device has received (not from "now").
#
# Mosquitto (single-threaded) answers the PUBLISHes of one main-loop turn, then saves the whole
# database (`autosave_interval 1` with `autosave_on_changes`: after every change, with fsync).
# A SIGKILL loses what was acknowledged after the start of the last save that completed: the
# acknowledgements of one turn. Nothing is acknowledged after the broker died, so those reach
# the device just before its newest acknowledgement; counting back from there makes the window
# independent of the time the device takes to notice the disconnect (at once for a closed
# socket, up to 1.5 x keepalive = 45 s for a silent one). The window has to cover the broker's
# save interval (a save per change; measured here: 0.6 ms median, 18 ms max with a live
# subscriber, 8 ms median and 88 ms max with 5,000 messages queued, growing with the queue) and
# the device's own scheduling delays between reading those acknowledgements. 5 s is well above
# both on a loaded 2-core machine; the cost is a few duplicates per reconnect and, at one
# message per device per second, about 2.4 kB per device (12 MB for 5,000 devices).
WINDOW_S = 5.0
# Bounds per device. A simulated device publishes about once a second or less, so 5 s is a few
# messages (~300 bytes each); the bounds cut in only for a device bursting faster than about
# 40 messages a second, whose window then shrinks to its newest messages. Those still hold the
# messages at risk: one turn of the broker acknowledges at most paho's in-flight window of a
# device (20 messages), far below MAX_COUNT (and below MAX_BYTES unless messages exceed 3 kB).
MAX_COUNT = 256
MAX_BYTES = 64 * 1024
# Unacknowledged messages tracked by mid: paho holds at most this many (max_queued_messages),
# so more means paho dropped one without an acknowledgement; forget the oldest then.
MAX_PENDING = 10_000


class Outbox:
    """Recently acknowledged messages of one device session.

    `sent(mid, ...)` when paho took a publish, `acked(mid, ...)` when its PUBACK arrived,
    `take()` on reconnect: the window to publish again, oldest first.
    """

    __slots__ = (
        "_acked",
        "_bytes",
        "_clock",
        "_pending",
        "max_bytes",
        "max_count",
        "max_pending",
        "resent",
        "window_s",
    )

    def __init__(
        self,
        window_s: float = WINDOW_S,
        max_count: int = MAX_COUNT,
        max_bytes: int = MAX_BYTES,
        *,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self.resent = 0  # messages handed out by take(), over the session's life
        self._clock = clock
        # mid -> (channel, payload) of publishes paho holds until their PUBACK. paho sends these
        # again itself after a reconnect (same mid), so take() leaves them alone.
        self._pending: dict[int, tuple[Channel, bytes]] = {}
        # (acknowledged at, channel, payload), oldest first.
        self._acked: list[tuple[float, Channel, bytes]] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._acked)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def sent(self, mid: int, channel: Channel, payload: bytes) -> None:
        """paho accepted a QoS 1 publish (sent, or queued until the connection is back)."""
        if channel not in RESEND_CHANNELS:
            return
        pending = self._pending
        pending[mid] = (channel, payload)
        if len(pending) > self.max_pending:
            del pending[next(iter(pending))]

    def acked(self, mid: int, accepted: bool = True) -> None:
        """The broker acknowledged `mid`; `accepted` is False for a failure reason code (e.g.
        not authorised): the broker refused the message, sending it again would not help."""
        entry = self._pending.pop(mid, None)
        if entry is None or not accepted:
            return
        channel, payload = entry
        now = self._clock()
        self._acked.append((now, channel, payload))
        self._bytes += len(payload)
        self._prune(now)

    def _prune(self, newest: float) -> None:
        acked = self._acked
        oldest = newest - self.window_s
        drop = 0
        size = self._bytes
        while drop < len(acked) and (
            acked[drop][0] < oldest or len(acked) - drop > self.max_count or size > self.max_bytes
        ):
            size -= len(acked[drop][2])
            drop += 1
        if drop:
            del acked[:drop]
            self._bytes = size

    def take(self) -> list[tuple[Channel, bytes]]:
        """The window, oldest first, to publish again; the outbox forgets it (each copy comes
        back through `sent`/`acked` like any publish)."""
        out = [(channel, payload) for _, channel, payload in self._acked]
        self._acked = []
        self._bytes = 0
        self.resent += len(out)
        return out
