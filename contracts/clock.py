"""The street's clock: one definition of street time, shared by devices, backend, scenarios and
console.

The simulator owns the clock. Each simulator process announces its `ClockState` on
`lijia/sim/clock/{simulator}` (retained, QoS 1), on every change and, at "max", every
MAX_ANNOUNCE_S; its Last Will (empty, retained) removes the announcement when it dies, so a
street without a running simulator (real devices only) falls back to wall time.

A state is a mapping from wall time to street time: at the wall instant `wall` the street's time
was `street`, and it then runs `speed` street seconds per wall second. Paused, jumping or at
"max", street time does not follow the wall clock: it stays at `street` until the next
announcement (at "max" the simulator moves as fast as the broker takes its messages, and
announces its progress every MAX_ANNOUNCE_S).

Operators steer the clock through the backend (`POST /clock`): the backend publishes a
`ClockControl` on CLOCK_CONTROL_TOPIC, every simulator applies it (or refuses it with a reason)
and answers with a `ClockAck` on CLOCK_ACK_TOPIC, then announces its new state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from contracts.envelope import Token, WireModel
from contracts.vocabulary import STREET_TZ

CLOCK_TOPIC_PREFIX = "lijia/sim/clock"
CLOCK_FILTER = f"{CLOCK_TOPIC_PREFIX}/+"
CLOCK_CONTROL_TOPIC = "lijia/sim/clock-control"
CLOCK_ACK_TOPIC = "lijia/sim/clock-acks"

MAX = "max"
MAX_SPEED = 10_000.0
# How often a simulator at "max" announces how far its street has got (wall seconds).
MAX_ANNOUNCE_S = 0.5
# A jump moves the street forward by at most this much (the skipped time is simulated).
MAX_JUMP = timedelta(days=7)

Speed = Annotated[float, Field(gt=0, le=MAX_SPEED)] | Literal["max"]


def clock_topic(simulator: str) -> str:
    return f"{CLOCK_TOPIC_PREFIX}/{simulator}"


def parse_speed(text: str | float) -> float | None:
    """`"max"` -> None (as fast as possible); otherwise a positive float (1 = real time)."""
    if isinstance(text, str) and text.strip().lower() == MAX:
        return None
    speed = float(text)
    if not math.isfinite(speed) or speed <= 0 or speed > MAX_SPEED:
        raise ValueError(f"speed must be a number in (0, {MAX_SPEED:g}] or 'max'")
    return speed


def speed_label(speed: float | str | None) -> str:
    """`60x`, `1x`, `max`."""
    return MAX if speed is None or speed == MAX else f"{float(speed):g}x"


def street_day(ts: datetime) -> date:
    """The street's calendar day of an instant (Chongqing local date)."""
    return ts.astimezone(STREET_TZ).date()


class ClockState(WireModel):
    """One simulator's clock, as it announces it."""

    simulator: Token
    seq: int = Field(ge=0, description="announcements of this simulator, increasing")
    wall: AwareDatetime = Field(description="the anchor: at this wall-clock instant ...")
    street: AwareDatetime = Field(description="... the street's time was this")
    speed: Speed = Field(description="street seconds per wall second, or 'max'")
    paused: bool = False
    jumping_to: AwareDatetime | None = Field(
        default=None, description="a jump in progress: the street is being simulated up to here"
    )
    seed: int
    start: AwareDatetime = Field(description="the street's start instant (street time)")
    control: Token | None = Field(default=None, description="the last control applied")

    @property
    def max_speed(self) -> bool:
        return self.speed == MAX

    @property
    def running(self) -> bool:
        """Street time follows the wall clock linearly (not paused, jumping or at max)."""
        return not (self.paused or self.max_speed or self.jumping_to is not None)

    def street_at(self, wall: datetime) -> datetime:
        """The street's time at a wall-clock instant (never before the anchor)."""
        if not self.running:
            return self.street
        assert not isinstance(self.speed, str)
        elapsed = max(0.0, (wall - self.wall).total_seconds())
        return self.street + timedelta(seconds=elapsed * self.speed)

    def wall_at(self, street: datetime) -> datetime | None:
        """When the street will reach `street`, by the wall clock; None if the clock is not
        running linearly (paused, jumping, at max): ask again after the next announcement."""
        if not self.running:
            return None
        assert not isinstance(self.speed, str)
        return self.wall + timedelta(seconds=(street - self.street).total_seconds() / self.speed)


def newest(states: Iterable[ClockState]) -> ClockState | None:
    """The state to follow when several simulators announce (they obey the same controls):
    the most recently anchored one."""
    return max(states, key=lambda s: s.wall, default=None)


def street_now(state: ClockState | None, wall: datetime | None = None) -> datetime:
    """Street time now: the state's mapping, or wall time when no simulator announces."""
    wall = wall or datetime.now(UTC)
    return wall if state is None else state.street_at(wall)


# -- control -----------------------------------------------------------------------------------
ClockVerb = Literal["pause", "resume", "speed", "jump"]


class ClockAction(WireModel):
    """What an operator asks of the street's clock (the body of `POST /clock`).

    - `pause` / `resume`: street time stops / runs again at the same speed;
    - `speed`: a new speed (a number, 1 = real time, or "max");
    - `jump`: forward to `to` (a street instant), or to the next `at` (a street time of day,
      e.g. 07:30: today's if still ahead, else tomorrow's). The skipped time is simulated (every
      device's state and random streams live through it) but nothing from it is published, so
      the street after the jump is the one that would have been, whenever the jump was asked.
      The skipped emissions use their sequence numbers, and a device that skipped some begins
      a new `boot` after the jump: the same (device, seq) is the same event in every run, and
      the numbers it used without publishing are no gap (gaps are counted per boot).
    Refused at "max" (pause, resume, jump), and by the backend when no simulator runs."""

    action: ClockVerb
    speed: Speed | None = None
    to: AwareDatetime | None = None
    at: time | None = None

    @model_validator(mode="after")
    def _fields(self) -> ClockAction:
        if (self.action == "speed") != (self.speed is not None):
            raise ValueError("`speed` is given with the action 'speed', and only with it")
        if self.action == "jump":
            if (self.to is None) == (self.at is None):
                raise ValueError("a jump has exactly one of: to (an instant), at (a time of day)")
        elif self.to is not None or self.at is not None:
            raise ValueError("`to` and `at` are given with the action 'jump' only")
        return self

    def jump_target(self, now: datetime) -> datetime:
        """The street instant a jump asked at street time `now` goes to."""
        if self.to is not None:
            return self.to
        assert self.at is not None
        local = now.astimezone(STREET_TZ)
        target = datetime.combine(local.date(), self.at, tzinfo=STREET_TZ)
        if target <= local:
            target += timedelta(days=1)
        return target.astimezone(UTC)


class ClockRefused(ValueError):
    """A clock action that cannot be applied now; the message is the operator's reason."""


def check(action: ClockAction, state: ClockState, now: datetime) -> datetime | None:
    """Raise ClockRefused unless `action` can apply to `state` at street time `now`; for a jump,
    its target instant (None otherwise). The simulator and the backend use the same checks."""
    if state.max_speed and action.action != "speed":
        raise ClockRefused(
            f"the street runs at 'max' (as fast as the broker takes it): {action.action} needs "
            "a speed; set one first"
        )
    if state.jumping_to is not None:
        raise ClockRefused("a jump is in progress; wait for it to finish")
    if action.action == "pause" and state.paused:
        raise ClockRefused("the street's clock is already paused")
    if action.action == "resume" and not state.paused:
        raise ClockRefused("the street's clock is not paused")
    if action.action != "jump":
        return None
    target = action.jump_target(now)
    if target <= now:
        raise ClockRefused("a jump goes forward only: that street time has passed")
    if target - now > MAX_JUMP:
        raise ClockRefused(f"a jump goes at most {MAX_JUMP.days} days ahead")
    return target


class ClockControl(WireModel):
    """One message on CLOCK_CONTROL_TOPIC."""

    id: Token
    do: ClockAction


class ClockAck(WireModel):
    """A simulator's answer on CLOCK_ACK_TOPIC: applied (with its new state) or refused."""

    id: Token
    simulator: Token
    ok: bool
    reason: str | None = None
    clock: ClockState


# -- the API's view ----------------------------------------------------------------------------
class ClockView(WireModel):
    """`GET /clock`: the street's time as the backend follows it."""

    source: Literal["simulator", "wall"] = Field(
        description="'wall' when no simulator announces a clock (real devices only)"
    )
    now: AwareDatetime = Field(description="street time now")
    wall: AwareDatetime = Field(description="wall-clock time now")
    day: date = Field(description="the street's calendar day (Chongqing)")
    speed: Speed
    paused: bool = False
    jumping_to: AwareDatetime | None = None
    seed: int | None = None
    start: AwareDatetime | None = None
    simulators: list[Token] = Field(default_factory=list)

    @classmethod
    def of(cls, states: Iterable[ClockState], wall: datetime | None = None) -> ClockView:
        states = list(states)
        wall = wall or datetime.now(UTC)
        state = newest(states)
        now = street_now(state, wall)
        if state is None:
            return cls(source="wall", now=now, wall=wall, day=street_day(now), speed=1.0)
        return cls(
            source="simulator",
            now=now,
            wall=wall,
            day=street_day(now),
            speed=state.speed,
            paused=state.paused,
            jumping_to=state.jumping_to,
            seed=state.seed,
            start=state.start,
            simulators=sorted(s.simulator for s in states),
        )
