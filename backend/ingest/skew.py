"""Clock skew: how far a device's clock is from street time, told apart from a backlog.

A message's offset is its `ts` minus the street's time when it reached us (contracts/clock.py:
street time at the wall instant of receipt). Delivery only ever delays a message, so

    offset = the device clock's skew - the delivery delay,   with delay >= 0.

- Ahead (offset > +flag): no delay makes a message look early, so a device clock ahead is
  flagged at once, at any speed.
- Behind (offset < -flag): a late clock and a delayed message (a backlog after an outage: the
  device's outbox resent, or the broker kept our queue while we were away) look the same in one
  message. They differ in pace: a backlog arrives in a burst, many device-seconds per
  street-second of arrival, while a late clock's live messages arrive at the pace they were made
  (the device-time between two messages ≈ the street time between their arrivals). Behind
  counts only on messages paced like that, twice in a row, and the allowance grows with the
  clock's speed (a wall-second of ordinary latency is `speed` street-seconds).
- Otherwise the clock is fine (flag cleared).

At "max" or during a jump the street's time between announcements is not known to the second,
so nothing is judged then (the twin keeps its last judgement).

The watch remembers, per device, the last judged message (in memory: a restarted backend
starts afresh, and replicas sharing a device's messages each see a paced subset of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.clock import ClockState

# A live message arrives at its own pace: street time between arrivals within these factors
# of the device-time between the messages.
PACE_MIN, PACE_MAX = 0.5, 2.0
# Ordinary delivery latency, in wall seconds, allowed before "behind" counts.
LATENCY_ALLOWANCE_S = 2.0
# Paced behind messages in a row before a late clock is flagged.
BEHIND_STREAK = 2


@dataclass(frozen=True)
class Judgement:
    skew_s: float
    skewed: bool


def exact(clock: ClockState | None) -> bool:
    """Street time at an instant is known to the second: no simulator (wall time), or one
    running linearly or paused (not at "max", not mid-jump)."""
    return clock is None or (not clock.max_speed and clock.jumping_to is None)


@dataclass
class SkewWatch:
    flag_s: float
    _last: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    _behind: dict[str, int] = field(default_factory=dict)

    def judge(
        self, device_id: str, ts: datetime, street: datetime, clock: ClockState | None
    ) -> Judgement | None:
        """The judgement on one live (not injected) message, or None: nothing new learnt."""
        if not exact(clock):
            self._last.pop(device_id, None)
            return None
        offset = (ts - street).total_seconds()
        previous = self._last.get(device_id)
        self._last[device_id] = (ts, street)
        if offset > self.flag_s:
            self._behind.pop(device_id, None)
            return Judgement(round(offset, 1), True)
        speed = 1.0 if clock is None or isinstance(clock.speed, str) else clock.speed
        if offset >= -(self.flag_s + LATENCY_ALLOWANCE_S * speed):
            self._behind.pop(device_id, None)
            return Judgement(round(offset, 1), False)
        if previous is None or not _paced(previous, (ts, street)):
            self._behind.pop(device_id, None)  # a burst: a backlog, not the clock
            return None
        streak = self._behind[device_id] = self._behind.get(device_id, 0) + 1
        return Judgement(round(offset, 1), True) if streak >= BEHIND_STREAK else None


def _paced(previous: tuple[datetime, datetime], current: tuple[datetime, datetime]) -> bool:
    made = (current[0] - previous[0]).total_seconds()
    arrived = (current[1] - previous[1]).total_seconds()
    return made > 0 and PACE_MIN <= arrived / made <= PACE_MAX
