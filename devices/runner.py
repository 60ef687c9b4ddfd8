"""Runs the simulated street: one MQTT session per device, all on one loop, in simulated time.

Start-up. The devices connect in waves: at most CONNECT_BATCH new connections per loop tick and
at most CONNECT_WINDOW waiting for their CONNACK, so a street of thousands comes up in seconds
without overflowing the broker's accept queue. The behaviours start meanwhile, a few milliseconds'
worth per tick. The simulated clock begins once every device has an answer from the broker
(online, or refused), or after `connect_timeout`.

Running. Every tick the street (devices/street.py) is stepped in street-time order:

- at a speed (1 = real time, 60 = a street minute per second): whatever is due by the clock's
  now; paused, nothing;
- at max (`speed=None`): back to back, moving the virtual clock to each due instant;
- during a jump (the operator's fast-forward, devices/control.py): back to back up to the
  target, and what the devices would publish meanwhile is dropped (no sequence number either:
  a gap would read as a lost message); then the clock runs on from the target.

Street-time timers (`call_at_street`: the end of a drill's fault, outage or load change) take
their turn in the same order, so at max or across a jump they fire at their place in the street.

Between batches of STEP_BATCH steps the loop reads and writes the sockets, so PUBACKs, commands
and pings always get their turn. Back-pressure: once HIGH_WATER publishes are waiting for their
PUBACK the street waits for the broker; at max it also waits once devices away from the broker
(a drill took them off, or they are reconnecting) hold HIGH_WATER publishes between them, but
not before: one device's outage does not stop the others (it publishes its queue on return).
Memory stays bounded and no device's paho queue overflows; a slow broker slows the simulation,
never the other way round. Events carry their street instant, so the sequence is the same
whatever the pace and the pauses (only event ids, boot ids and availability timestamps differ).

File descriptors: one socket per device. The runner raises its soft RLIMIT_NOFILE towards
devices + FD_HEADROOM (up to the hard limit; `ulimit -Hn` shows it) and warns if that is short.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType

from adapters.credentials import load as load_credentials
from adapters.limits import raise_fd_limit
from contracts.clock import speed_label
from contracts.fleet import Fleet
from contracts.vocabulary import STREET_TZ
from devices.clock import SimClock
from devices.control import SimulatorControl
from devices.loop import MqttLoop
from devices.session import BrokerAddress, DeviceSession
from devices.stats import FleetStats
from devices.status import Status, StatusLog, rss_mb
from devices.street import Street
from devices.street import device_rng as device_rng  # where tests and bench import it from

log = logging.getLogger(__name__)

# Connections waiting for their CONNACK, at most. Mosquitto listens with a backlog of 100: a
# wave larger than that overflows its accept queue while it is busy (an autosave), and the
# dropped SYNs cost a 1 s retransmission each. Within the window a street connects at the
# broker's own pace: a few thousand devices a second.
CONNECT_WINDOW = 80
CONNECT_BATCH = 80  # new connections per loop tick
CONNECT_TIMEOUT_S = 30.0
START_SLICE_S = 0.02  # behaviours started per tick while connecting, in CPU time
STEP_BATCH = 500  # street steps between two looks at the sockets
HIGH_WATER = 5000  # unacknowledged publishes at which the street waits for the broker
MAX_WAIT_S = 0.2
JUMP_SLICE_S = 0.02  # CPU time a jump simulates between two looks at the sockets
DRAIN_TIMEOUT_S = 30.0
FD_HEADROOM = 256


class FleetRunner:
    def __init__(
        self,
        fleet: Fleet,
        credentials_dir: Path,
        broker: BrokerAddress,
        *,
        speed: float | None = 1.0,
        seed: int | None = None,
        start: datetime | None = None,
        only: Collection[str] | None = None,
        hours: float | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.fleet = fleet
        self.street = Street(fleet, seed, only=only)
        self.seed = self.street.seed
        self.loop = MqttLoop()
        # The simulated start is fixed now (so behaviours can start while devices connect); the
        # clock only begins to run once the street is online.
        self.clock = SimClock(start or datetime.now(UTC), speed)
        self.hours = hours
        self.connect_timeout = connect_timeout
        self.stats = FleetStats()
        creds = load_credentials(credentials_dir)
        missing = [s.id for s in self.street.specs if s.id not in creds.devices]
        if missing:
            raise ValueError(
                f"no MQTT credentials for {len(missing)} device(s), e.g. {missing[0]!r}: run "
                f"`python -m stack credentials --devices {len(fleet.devices)}` for this street"
            )
        raise_fd_limit(len(self.street.specs) + FD_HEADROOM)
        self.sessions = [
            DeviceSession(
                behaviour,
                creds.devices[spec.id],
                self.loop,
                self.clock,
                broker,
                self.stats,
                on_change=partial(self.street.touch, i),
                now=self._command_now,
            )
            for i, (spec, behaviour) in enumerate(
                zip(self.street.specs, self.street.behaviours, strict=True)
            )
        ]
        for session in self.sessions:
            session.ready = False  # until the street's clock starts
        # Drills' faults and load changes (contracts/simulation.py), if the credentials have
        # the simulator's user (older secrets files do not: then there is no control plane).
        self.control = (
            SimulatorControl(self, creds.simulator_password, broker)
            if creds.simulator_password
            else None
        )
        self.phase = "connecting"
        self.end: datetime | None = None
        self.finished = False
        self._to_connect: deque[DeviceSession] = deque()
        self._connects = 0
        self._starting = self.street.starting(self.clock.start)
        self._all_started = False
        self._connect_deadline = 0.0
        self._began = False
        # Street-time timers: (street instant, order, what to do), see call_at_street.
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        # A jump in progress (its target), and whether the clock was paused when it was asked.
        self.jumping_to: datetime | None = None
        self.jump_paused = False
        self._jump_from = self.clock.start
        # True while a jump simulates: what the devices would publish is dropped.
        self.silent = False

    # -- start-up ----------------------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting (in waves, as `tick` runs)."""
        self._to_connect = deque(self.sessions)
        self._connect_deadline = time.monotonic() + self.connect_timeout
        if self.control is not None:
            self.control.connect()

    def _connect_some(self) -> None:
        opened = 0
        while (
            self._to_connect
            and opened < CONNECT_BATCH
            and self._connects - self.stats.settled < CONNECT_WINDOW
        ):
            self._to_connect.popleft().connect()
            self._connects += 1
            opened += 1

    def _start_some(self) -> None:
        deadline = time.perf_counter() + START_SLICE_S
        while not self._all_started and time.perf_counter() < deadline:
            if next(self._starting, None) is None:
                self._all_started = True

    def _street_online(self) -> bool:
        answered = self.stats.connected + len(self.stats.refused)
        return not self._to_connect and answered >= len(self.sessions)

    def _begin(self) -> None:
        while not self._all_started:
            self._start_some()
        start = self.clock.begin()
        self._began = True
        if self.hours is not None:
            self.end = start + timedelta(hours=self.hours)
        self.phase = "running"
        for session in self.sessions:
            session.ready = True
        if self.control is not None:
            self.control.announce()
        if self.stats.connected < len(self.sessions):
            log.warning(
                "simulated clock starts with %d of %d devices online (%d refused)",
                self.stats.connected,
                len(self.sessions),
                len(self.stats.refused),
            )

    # -- running -----------------------------------------------------------------------------
    @property
    def began(self) -> bool:
        """The street's clock has started (every device answered, or the connect timeout)."""
        return self._began

    def _command_now(self) -> datetime:
        """When a command lands: the clock's now, but never past what the street has still to
        simulate (it may lag under back-pressure), so no device sees time run backwards."""
        if self.jumping_to is not None and self.street.now is not None:
            return self.street.now  # the jump's progress
        now = self.clock.now() if self._began else self.clock.start
        due = self.street.next_due()
        return min(now, due) if due is not None else now

    def call_at_street(self, at: datetime, fn: Callable[[], None]) -> None:
        """Run `fn` when the street reaches the instant `at`, in street-time order."""
        heapq.heappush(self._timers, (at, next(self._timer_order), fn))

    def _next(self) -> tuple[datetime | None, bool]:
        """The next street instant to handle, and whether it is a timer (before a step due at
        the same instant)."""
        due = self.street.next_due()
        if self._timers and (due is None or self._timers[0][0] <= due):
            return self._timers[0][0], True
        return due, False

    def _fire_timer(self) -> None:
        _, _, fn = heapq.heappop(self._timers)
        try:
            fn()
        except Exception:
            log.exception("street-time timer failed")

    def jump(self, target: datetime) -> None:
        """Fast-forward silently to `target` (the pump does it in slices; see `_jump_some`)."""
        self.jump_paused = self.clock.paused
        self.clock.pause()  # street time stands still meanwhile (commands land at the progress)
        # What was due before the jump was asked is published (the street catches up with its
        # clock first), so exactly the span [asked, target) is skipped, at any pace.
        self._jump_from = self.clock.now()
        self.jumping_to = target

    def _jump_some(self, target: datetime) -> float:
        limit = target if self.end is None else min(target, self.end)
        deadline = time.perf_counter() + JUMP_SLICE_S
        try:
            while time.perf_counter() < deadline:
                due, timer = self._next()
                if due is None or due >= limit:
                    break
                self.silent = due >= self._jump_from
                if timer:
                    self._fire_timer()
                elif self.silent:
                    for i, _ts, _emission in self.street.step():
                        self.sessions[i].skip()  # not published; its sequence number is used
                else:
                    for i, ts, emission in self.street.step():
                        self.sessions[i].emit(emission, ts)
            else:
                return 0.0
        finally:
            self.silent = False
        self.jumping_to = None
        for session in self.sessions:
            session.after_skip()
        self.clock.jump(target)
        if not self.jump_paused:
            self.clock.resume()
        if self.control is not None:
            self.control.announce()
        return 0.0

    def _returning_hold(self) -> bool:
        """Do devices that are reconnecting by themselves hold HIGH_WATER publishes? Devices a
        drill took off are left out: they come back only when the street reaches the end of
        their outage (a street-time timer), so waiting for them would freeze the street. What
        they hold meanwhile is bounded by their outage and paho's queue (devices/session.py)."""
        held = sum(s.pending for s in self.sessions if not s.online and not s.away)
        return held >= HIGH_WATER

    def pump(self) -> float:
        """Step the street as far as the pace allows; how long the loop may then wait."""
        if self.jumping_to is not None:
            return self._jump_some(self.jumping_to)
        clock, street, stats, sessions = self.clock, self.street, self.stats, self.sessions
        held_back = clock.max_speed and stats.held >= HIGH_WATER and self._returning_hold()
        for _ in range(STEP_BATCH):
            due, timer = self._next()
            if due is None:
                return MAX_WAIT_S
            if self.end is not None and due >= self.end:
                if clock.max_speed or clock.now() >= self.end:
                    self.finished = True
                    return MAX_WAIT_S
                return min(MAX_WAIT_S, max(0.0, clock.monotonic_at(self.end) - time.monotonic()))
            if stats.backlog >= HIGH_WATER:
                return 0.01  # the broker is behind: let PUBACKs come in
            if clock.max_speed:
                if held_back:
                    return 0.05  # devices reconnecting hold much: let them come back first
                clock.advance(due)
            else:
                wait = clock.monotonic_at(due) - time.monotonic()
                if wait > 0:
                    return MAX_WAIT_S if math.isinf(wait) else min(wait, MAX_WAIT_S)
            if timer:
                self._fire_timer()
                continue
            for i, ts, emission in street.step():
                sessions[i].emit(emission, ts)
        return 0.0

    def tick(self) -> None:
        """One turn of the loop: connect or step the street, then socket I/O and timers."""
        if self.phase == "connecting":
            self._connect_some()
            self._start_some()
            if self._street_online() or time.monotonic() > self._connect_deadline:
                self._begin()
                wait = 0.0
            else:
                wait = 0.0 if not self._all_started else 0.01
        else:
            wait = self.pump()
        self.loop.run_once(wait)

    def status(self) -> Status:
        return Status(
            phase="done" if self.finished else self.phase,
            connected=self.stats.connected,
            total=len(self.sessions),
            refused=len(self.stats.refused),
            published=self.stats.published,
            events=self.stats.events,
            errors=self.stats.errors,
            dropped=self.stats.dropped,
            resent=self.stats.resent,
            backlog=self.stats.backlog,
            sim_now=self._sim_now(),
            clock=self.clock_label(),
            journeys=self.street.journeys_started,
            rss_mb=rss_mb(),
        )

    def clock_label(self) -> str:
        label = speed_label(self.clock.speed)
        if self.jumping_to is not None:
            return f"{label}, jumping to {self.jumping_to.astimezone(STREET_TZ):%m-%d %H:%M}"
        return f"{label}, paused" if self.clock.paused else label

    def _sim_now(self) -> datetime:
        if not self._began:
            return self.clock.start
        now = self.clock.now()
        return min(now, self.end) if self.end is not None else now

    def run(
        self,
        stop: threading.Event,
        on_status: Callable[[Status], None] | None = None,
        status_every: float = 1.0,
    ) -> None:
        """Connect, run until `stop` is set (or `hours` of simulated time are done and the broker
        has acknowledged everything), then shut down cleanly."""
        self.start()
        next_status = time.monotonic()
        drained_by: float | None = None
        try:
            while not stop.is_set():
                self.tick()
                now = time.monotonic()
                if on_status is not None and now >= next_status:
                    on_status(self.status())
                    next_status = now + status_every
                if self.finished:
                    drained_by = drained_by or now + DRAIN_TIMEOUT_S
                    if self.stats.backlog <= 0 or now > drained_by:
                        break
        finally:
            self.shutdown()
            if not self.finished:
                self.phase = "stopped"
            if on_status is not None:
                on_status(self.status())

    def shutdown(self, timeout: float = 10.0) -> None:
        """Every device says goodbye on its state topic, then the loop drains."""
        if self.control is not None:
            self.control.close()
        for session in self.sessions:
            session.shutdown()
        deadline = time.monotonic() + timeout
        # Done when every socket is closed: paho closes it after DISCONNECT is written.
        self.loop.run(until=lambda: not self.loop.selector.get_map() or time.monotonic() > deadline)

    def run_forever(self, status_every: float = 10.0) -> None:
        """Run until SIGTERM / SIGINT, logging a status line every `status_every` seconds."""
        stopping = threading.Event()

        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.run(stopping, StatusLog(log.info), status_every)
