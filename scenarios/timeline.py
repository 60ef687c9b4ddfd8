"""A run's two clocks: street time (the street's clock, read through the port as a
contracts.clock.ClockView) and the wall clock (this process's monotonic clock).

Durations in a scenario are street seconds unless marked `clock: wall` (docs/architecture.md,
"where do I add a drill step"). A street deadline becomes a wall wait through the last view of
the clock: the view is re-read at most every REFRESH_S wall seconds, so an operator's pause,
resume or speed change during a run is followed within that. While the street's time does not
follow the wall clock linearly (paused, jumping, at "max") a wait cannot be computed: the
runner polls. Without a simulator the view's source is "wall": street time is wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from contracts.clock import MAX, ClockAction, ClockView

ClockName = Literal["street", "wall"]

REFRESH_S = 0.5  # re-read the street's clock at most this often (wall seconds)
POLL_S = 0.25  # how long to wait before looking again when no wait can be computed


def linear(view: ClockView) -> bool:
    """Does street time follow the wall clock at `view.speed` (not paused, jumping or at max)?"""
    if view.source == "wall":
        return True
    return not (view.paused or view.speed == MAX or view.jumping_to is not None)


def street_after(view: ClockView, elapsed_s: float) -> datetime:
    """The street's time `elapsed_s` wall seconds after the view was read."""
    if not linear(view):
        return view.now
    assert not isinstance(view.speed, str)
    return view.now + timedelta(seconds=max(0.0, elapsed_s) * view.speed)


def wall_wait(
    view: ClockView, elapsed_s: float, deadline: datetime, now: datetime | None = None
) -> float | None:
    """Wall seconds, counted `elapsed_s` after the view was read, until the street reaches
    `deadline`: 0 when it has; None when the clock does not run linearly (look again later).
    `now`: the street's time then, if known better than the view's projection."""
    now = now or street_after(view, elapsed_s)
    if now >= deadline:
        return 0.0
    if not linear(view):
        return None
    assert not isinstance(view.speed, str)
    return (deadline - now).total_seconds() / view.speed


def shows(action: ClockAction, view: ClockView, target: datetime | None) -> bool:
    """Has the street's clock taken `action` (for a jump: arrived at `target`)?"""
    if action.action == "pause":
        return view.paused
    if action.action == "resume":
        return not view.paused
    if action.action == "speed":
        return view.speed == action.speed
    return view.jumping_to is None and (target is None or view.now >= target)


@dataclass(frozen=True)
class Moment:
    """An instant of a run on both clocks: monotonic wall seconds and street time."""

    wall: float
    street: datetime

    def since(self, later: Moment, clock: ClockName) -> float:
        """Seconds from this moment to `later` on `clock`."""
        if clock == "wall":
            return later.wall - self.wall
        return (later.street - self.street).total_seconds()


class StreetTimeline:
    """The street's time as a run follows it (thread-safe: the timeline and the watcher share
    it). `read` asks the street for its clock; `monotonic` is the wall clock (a fake in tests)."""

    def __init__(
        self,
        read: Callable[[], ClockView],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._view: ClockView | None = None
        self._read_at = 0.0
        self._tried_at = 0.0
        self._latest: datetime | None = None

    def update(self, view: ClockView) -> None:
        """Take a view read elsewhere (e.g. the answer to a clock action) as the latest."""
        with self._lock:
            self._view, self._read_at = view, self._monotonic()

    def view(self, fresh: bool = False) -> tuple[ClockView, float]:
        """The latest view and the wall seconds since it was read; re-read when older than
        REFRESH_S (or `fresh`). The first read raises what the port raises; later failures
        keep the last view (a street briefly unreachable does not end a run)."""
        with self._lock:
            known, tried_at = self._view, self._tried_at
        now = self._monotonic()
        if known is None or fresh or now - tried_at >= REFRESH_S:
            with self._lock:
                self._tried_at = now
            try:
                self.update(self._read())
            except Exception:
                if known is None:
                    raise
        with self._lock:
            view, read_at = self._view, self._read_at
        assert view is not None
        return view, self._monotonic() - read_at

    def now(self) -> Moment:
        """Now on both clocks. The street's time a run sees never goes back (two reads of
        the clock may disagree by a hair; the clock itself only moves forward)."""
        view, elapsed = self.view()
        street = street_after(view, elapsed)
        with self._lock:
            if self._latest is not None and street < self._latest:
                street = self._latest
            self._latest = street
        return Moment(self._monotonic(), street)

    def reached(self, start: Moment, seconds: float, clock: ClockName) -> bool:
        """Have `seconds` on `clock` passed since `start`?"""
        return start.since(self.now(), clock) >= seconds

    def wait_s(self, start: Moment, seconds: float, clock: ClockName) -> float | None:
        """Wall seconds until `seconds` on `clock` have passed since `start` (0: they have;
        None: the street's clock is not running linearly, look again after POLL_S)."""
        if clock == "wall":
            return max(0.0, start.wall + seconds - self._monotonic())
        now = self.now()  # the same street time as reached() and the run's moments see
        view, _ = self.view()
        return wall_wait(view, 0.0, start.street + timedelta(seconds=seconds), now.street)

    def pause_s(self, start: Moment, seconds: float, clock: ClockName) -> float:
        """How long to wait before looking again (0: the time has come): never longer than
        REFRESH_S on the street's clock, so changes to it are followed."""
        wait = self.wait_s(start, seconds, clock)
        if wait is None:
            return POLL_S
        return wait if clock == "wall" else min(wait, REFRESH_S)
