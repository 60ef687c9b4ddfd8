"""Network trouble on one device's messages, as a drill asks for it (contracts/simulation.py).

Pure: given a serialised message, what goes on the wire and in which order. The session applies
the delay and the clock skew (the skew is part of the envelope, so it is set before
serialising). Every message keeps its sequence number: a dropped one is a gap the backend
reports, a duplicate keeps its event id (stored once), a corrupted one is dead-lettered, a
held-back one arrives after its successor.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from contracts.simulation import NetworkAction
from contracts.topics import Channel

Message = tuple[Channel, bytes]


def corrupt(payload: bytes) -> bytes:
    """A message cut short on the wire: no longer valid JSON (the backend dead-letters it)."""
    return payload[: max(1, len(payload) // 2)]


@dataclass
class NetworkFaults:
    spec: NetworkAction
    rng: random.Random
    until: float  # time.monotonic() at which the trouble ends
    held: Message | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return time.monotonic() < self.until

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def outgoing(self, channel: Channel, payload: bytes) -> list[Message]:
        """What reaches the wire, in order, for this message (maybe nothing, maybe more)."""
        spec, roll = self.spec, self.rng.random
        if spec.drop and roll() < spec.drop:
            self._count("dropped")
            return self._release([])
        if spec.corrupt and roll() < spec.corrupt:
            self._count("corrupted")
            payload = corrupt(payload)
        out = [(channel, payload)]
        if spec.duplicate and roll() < spec.duplicate:
            self._count("duplicated")
            out.append((channel, payload))
        if self.held is None and spec.reorder and roll() < spec.reorder:
            self._count("reordered")
            self.held = out[0]  # goes out right after the next message
            return out[1:]
        return self._release(out)

    def _release(self, out: list[Message]) -> list[Message]:
        if self.held is not None:
            out.append(self.held)
            self.held = None
        return out

    def flush(self) -> list[Message]:
        """The trouble is over: a message still held back goes out now."""
        return self._release([])
