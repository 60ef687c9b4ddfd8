"""The street's clock as the backend follows it: the one `now()` for every fact of the street.

Simulators announce their clock (contracts/clock.py) retained on `lijia/sim/clock/{simulator}`.
Every backend replica follows every announcement on its outgoing session (backend/publisher.py
subscribes for it: not a shared subscription, each replica must see all of them), keeps the
latest state per simulator and reads street time from the newest one. With no simulator
announcing (real devices only) street time is wall time.

Operators steer the clock through `control` (`POST /clock`): checked against the current state
with the same rules the simulators apply (contracts.clock.check), published on
CLOCK_CONTROL_TOPIC, and answered once every announcing simulator has acknowledged it.

What stays on the wall clock (docs/architecture.md, "Two clocks"): a command's delivery
timeout, ingest lag, `received_at`, HTTP and rate limits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from contracts.clock import (
    CLOCK_ACK_TOPIC,
    CLOCK_CONTROL_TOPIC,
    CLOCK_FILTER,
    CLOCK_TOPIC_PREFIX,
    ClockAck,
    ClockAction,
    ClockControl,
    ClockRefused,
    ClockState,
    ClockView,
    check,
    newest,
    street_now,
)
from contracts.envelope import new_id

log = logging.getLogger(__name__)

# How long `control` waits for every simulator's acknowledgement (wall seconds).
ACK_TIMEOUT_S = 5.0
NO_SIMULATOR = "no simulator is running: street time is wall time"
# After a reconnect, how long a simulator held from before has to be announced again (its
# retained state) before it is taken for gone (wall seconds).
RECONFIRM_S = 2.0
# A new announcement whose street time differs from what the previous one predicted by more
# than this is a discontinuity (a jump whose start we did not see).
_CONTINUITY_SLACK = timedelta(seconds=60)

Publish = Callable[[str, bytes], None]


def wall_now() -> datetime:
    return datetime.now(UTC)


class ClockControlFailed(ClockRefused):
    """A control that was not applied: `status` is the HTTP answer (409 refused, 503 the broker
    did not take it, 504 no answer in time), the message the operator's reason. A ClockRefused,
    so whoever handles the contract's refusals (a drill's clock step) handles these too."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ClockChange:
    """What an applied control answers: the clock as it is now and each simulator's ack."""

    clock: ClockView
    acks: list[ClockAck]


class StreetClock:
    """Thread-safe: paho's network thread feeds it, the API, ingest and the upkeep read it."""

    def __init__(self, wall: Callable[[], datetime] = wall_now) -> None:
        self._wall = wall
        self._cond = threading.Condition()
        self._states: dict[str, ClockState] = {}
        self._acks: dict[str, list[ClockAck]] = {}  # control id -> answers so far
        self._continuous_since: datetime | None = None
        self._listeners: list[Callable[[ClockView], None]] = []
        self._unconfirmed: set[str] = set()  # held from before a reconnect, not announced since
        self.ready = threading.Event()  # subscribed: retained announcements are on their way
        self._publish: Publish | None = None

    def bind(self, publish: Publish) -> None:
        """How controls go out: the backend's outgoing session (Publisher.publish_control)."""
        self._publish = publish

    # -- reading ---------------------------------------------------------------------------
    def state(self) -> ClockState | None:
        """The state street time follows (None: wall time)."""
        with self._cond:
            return newest(self._states.values())

    def at(self, wall: datetime) -> datetime:
        """Street time at a wall-clock instant, by the current mapping."""
        return street_now(self.state(), wall)

    def now(self) -> datetime:
        """Street time now: every fact of the street is stamped with this."""
        return street_now(self.state(), self._wall())

    def view(self) -> ClockView:
        with self._cond:
            states = list(self._states.values())
        return ClockView.of(states, self._wall())

    def continuous_since(self) -> datetime | None:
        """The street instant since which street time has run without a break (a jump, a
        simulator appearing or going); None if it never broke. Silence and offline-too-long are
        only judged over continuous time: a jump skips hours in which devices published
        nothing, by design (contracts/clock.py). At "max" (and during a jump) street time moves
        only with each announcement, hours at a time, so a device's `last_seen` lags by design:
        nothing is judged then (street now is returned) and leaving "max" is a break."""
        state = self.state()
        if state is not None and (state.max_speed or state.jumping_to is not None):
            return street_now(state, self._wall())
        with self._cond:
            return self._continuous_since

    def on_change(self, listener: Callable[[ClockView], None]) -> None:
        """Called (on paho's thread) with the new view after each accepted announcement."""
        self._listeners.append(listener)

    # -- following (paho's network thread: never raises) -----------------------------------
    def topics(self) -> list[str]:
        """What to subscribe to; the last one has no retained messages (a barrier's topic)."""
        return [CLOCK_FILTER, CLOCK_ACK_TOPIC]

    def connected(self, first: bool) -> None:
        """Our session (re)connected and is about to subscribe. After a reconnect the retained
        announcements come again; a simulator that went away meanwhile (its Last Will was
        missed) must not linger, but street time must not fall back to wall time meanwhile
        either (ingest would judge a backlog against the wrong clock): the states held stay
        until `subscribed` has given the retained ones time to arrive."""
        if not first:
            with self._cond:
                self._unconfirmed = set(self._states)

    def subscribed(self) -> None:
        """The broker has sent the retained announcements of our subscription (the SUBACK of a
        later SUBSCRIBE came after them)."""
        self.ready.set()
        if self._unconfirmed:
            timer = threading.Timer(RECONFIRM_S, self._drop_unconfirmed)
            timer.daemon = True
            timer.start()

    def _drop_unconfirmed(self) -> None:
        with self._cond:
            gone, self._unconfirmed = self._unconfirmed, set()
        for simulator in sorted(gone):
            self._announce(simulator, None)

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            if topic == CLOCK_ACK_TOPIC:
                self._on_ack(ClockAck.model_validate_json(payload))
            elif topic.startswith(CLOCK_TOPIC_PREFIX + "/"):
                simulator = topic.removeprefix(CLOCK_TOPIC_PREFIX + "/")
                state = ClockState.model_validate_json(payload) if payload else None
                self._announce(simulator, state)
        except ValidationError as exc:
            log.warning("unreadable clock message on %s: %d errors", topic, exc.error_count())
        except Exception:
            log.exception("clock message on %s failed", topic)

    def _announce(self, simulator: str, state: ClockState | None) -> None:
        with self._cond:
            wall = self._wall()
            before = newest(self._states.values())
            old = self._states.get(simulator)
            self._unconfirmed.discard(simulator)
            if state is None:  # its Last Will (or a clean exit): that simulator is gone
                if old is None:
                    return
                del self._states[simulator]
            elif old is not None and state.seq <= old.seq and state.wall <= old.wall:
                return  # older than what we hold (a restarted simulator anchors anew)
            else:
                self._states[simulator] = state
            after = newest(self._states.values())
            if _broken(before, after, wall):
                self._continuous_since = street_now(after, wall)
            self._cond.notify_all()
            view = ClockView.of(self._states.values(), wall)
        for listener in self._listeners:
            try:
                listener(view)
            except Exception:
                log.exception("clock listener failed")

    def _on_ack(self, ack: ClockAck) -> None:
        # The ack carries the simulator's new state: follow it at once, the announcement may
        # come a moment later on its own topic.
        self._announce(ack.simulator, ack.clock)
        with self._cond:
            if ack.id in self._acks:
                self._acks[ack.id].append(ack)
                self._cond.notify_all()

    # -- steering ----------------------------------------------------------------------------
    def control(
        self,
        action: ClockAction,
        publish: Publish | None = None,
        timeout: float = ACK_TIMEOUT_S,
    ) -> ClockChange:
        """Forward an operator's action to every announcing simulator and wait for their acks.
        Raises ClockControlFailed: 409 (no simulator, refused by the checks or by a simulator),
        503 (the broker did not take it), 504 (not every simulator answered in time)."""
        with self._cond:
            states = dict(self._states)
        state = newest(states.values())
        if state is None:
            raise ClockControlFailed(409, NO_SIMULATOR)
        try:
            target = check(action, state, street_now(state, self._wall()))
        except ClockRefused as exc:
            raise ClockControlFailed(409, str(exc)) from None
        if target is not None:
            # "The next 07:30" is resolved once, here: every simulator jumps to the same instant,
            # the one checked above, whatever its own clock says when the control arrives.
            action = ClockAction(action="jump", to=target)
        publish = publish or self._publish
        if publish is None:
            raise ClockControlFailed(503, "the backend has no session to the broker")
        control = ClockControl(id=new_id(), do=action)
        with self._cond:
            self._acks[control.id] = []
        try:
            try:
                publish(CLOCK_CONTROL_TOPIC, control.model_dump_json().encode())
            except Exception as exc:  # backend.publisher.PublishError: not connected, no ack
                raise ClockControlFailed(503, f"broker did not take the control: {exc}") from None
            acks = self._wait_acks(control.id, set(states), timeout)
        finally:
            with self._cond:
                self._acks.pop(control.id, None)
        refused = [a for a in acks if not a.ok]
        if refused:
            reasons = "; ".join(f"{a.simulator}: {a.reason or 'refused'}" for a in refused)
            raise ClockControlFailed(409, reasons)
        return ClockChange(self.view(), sorted(acks, key=lambda a: a.simulator))

    def _wait_acks(self, control_id: str, expected: set[str], timeout: float) -> list[ClockAck]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                acks = self._acks.get(control_id, [])
                # A simulator that went away meanwhile is not waited for.
                waiting = (expected & set(self._states)) - {a.simulator for a in acks}
                if not waiting:
                    return list(acks)
                left = deadline - time.monotonic()
                if left <= 0:
                    names = ", ".join(sorted(waiting))
                    raise ClockControlFailed(
                        504, f"no answer from simulator {names} within {timeout:g} s"
                    )
                self._cond.wait(left)


def _broken(before: ClockState | None, after: ClockState | None, wall: datetime) -> bool:
    """Whether street time broke between two followed states (see `continuous_since`): a jump
    ended, or street time now is not what the previous state said it would be (a simulator
    appeared far from wall time, all went away, a jump whose start we did not see)."""
    if before is not None and before.jumping_to is not None:
        return after is None or after.jumping_to is None
    if before is not None and before.max_speed and after is not None:
        # At "max" each announcement moves the street on: progress, not a break; leaving "max"
        # is one (what was stamped at max lags the street by up to an announcement's interval).
        return not after.max_speed
    return abs(street_now(after, wall) - street_now(before, wall)) > _CONTINUITY_SLACK
