"""The whole street without I/O: every behaviour and the journey planner, in simulated-time order.

One heap of due instants drives everything, so the order of what happens depends only on the
fleet file, the seed and the start instant, never on the wall clock: the runner may step it in
real time, accelerated or as fast as possible and the devices publish the same events.

Each street day is new: at the start and at every Chongqing midnight (a DAY entry of the heap,
before anything else due at that instant) every device's random stream and the journeys' are
reseeded in place from (seed, device, street date). So a Tuesday never replays the Monday, while
the same seed and start still give the same events.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Collection, Iterator
from datetime import date, datetime, time

from contracts.fleet import Fleet
from devices import daily
from devices.behaviour import Behaviour, Emission
from devices.journeys import JourneyPlanner, Step
from devices.kinds import behaviour_for
from devices.population import Population

WAKE, JOURNEY, STEP, DAY = 0, 1, 2, 3
# (device index, simulated instant, what it publishes)
Published = tuple[int, datetime, Emission]
_Entry = tuple[datetime, int, int, int, object]


def device_rng(seed: int, device_id: str, day: date | None = None) -> random.Random:
    # Per device, so one device's randomness never depends on how many others there are; per
    # street day (the street's own runs), so no two days draw the same.
    return random.Random(stream_seed(seed, device_id, day))


def stream_seed(seed: int, name: str, day: date | None = None) -> str:
    return f"{seed}:{name}" if day is None else f"{seed}:{name}:{day.isoformat()}"


class Street:
    def __init__(
        self, fleet: Fleet, seed: int | None = None, *, only: Collection[str] | None = None
    ) -> None:
        self.seed = fleet.seed if seed is None else seed
        self.population = Population(fleet.population, self.seed)
        self.specs = [s for s in fleet.devices if not only or s.id in only]
        # The streams the street reseeds each day, shared with their holders (same objects).
        self._rngs = [device_rng(self.seed, s.id) for s in self.specs]
        self.behaviours: list[Behaviour] = [
            behaviour_for(s.kind)(s, rng, self.population)
            for s, rng in zip(self.specs, self._rngs, strict=True)
        ]
        self.journeys = JourneyPlanner(
            self.specs,
            random.Random(stream_seed(self.seed, "journeys")),
            self.population,
            fleet.journeys_per_hour,
        )
        self._heap: list[_Entry] = []
        # Bumped when a device's schedule changes outside its own wake: older entries are stale.
        self._generation = [0] * len(self.specs)
        self._order = itertools.count()
        self.now: datetime | None = None

    def start(self, now: datetime) -> None:
        """Every behaviour starts at the simulated instant `now`, in fleet order."""
        for _ in self.starting(now):
            pass

    def starting(self, now: datetime) -> Iterator[int]:
        """`start`, one device at a time (a runner interleaves thousands with its I/O)."""
        self.now = now
        self.new_day(daily.local_date(now))
        for i, behaviour in enumerate(self.behaviours):
            behaviour.start(now)
            self._push_wake(i)
            yield i
        if self.journeys.enabled:
            self.journeys.start(now)
            self._push(self.journeys.next_wakeup(), JOURNEY, -1, None)
        self._push_day()

    def new_day(self, day: date) -> None:
        """Reseed every stream for the street date `day`, in place (holders see the change)."""
        for spec, rng in zip(self.specs, self._rngs, strict=True):
            rng.seed(stream_seed(self.seed, spec.id, day))
        self.journeys.rng.seed(stream_seed(self.seed, "journeys", day))

    def next_due(self) -> datetime | None:
        """The simulated instant of the next thing to happen (None before `start`)."""
        heap = self._heap
        while heap:
            due, _, action, i, generation = heap[0]
            if action == WAKE and generation != self._generation[i]:
                heapq.heappop(heap)
                continue
            return due
        return None

    def step(self) -> list[Published]:
        """Let the earliest due thing happen; what the devices publish because of it."""
        if self.next_due() is None:
            return []
        due, _, action, i, extra = heapq.heappop(self._heap)
        self.now = due
        if action == WAKE:
            out = [(i, due, e) for e in self.behaviours[i].wake(due)]
            self._push_wake(i)
            return out
        if action == DAY:
            self.new_day(daily.local_date(due))
            self._push_day()
            return []
        if action == JOURNEY:
            for step in self.journeys.wake(due):
                self._push(step.at, STEP, step.device, step)
            self._push(self.journeys.next_wakeup(), JOURNEY, -1, None)
            return []
        assert isinstance(extra, Step)
        emitted = self.behaviours[i].journey_step(extra.resident, extra.correlation_id, due)
        self.touch(i)
        return [(i, due, e) for e in emitted]

    def run(self, until: datetime) -> Iterator[Published]:
        """Everything that happens before the simulated instant `until` (pure use: tests)."""
        while (due := self.next_due()) is not None and due < until:
            yield from self.step()

    def touch(self, i: int) -> None:
        """Device `i` changed outside its own wake (a command): wake it at its new instant."""
        self._generation[i] += 1
        self._push_wake(i)

    @property
    def journeys_started(self) -> int:
        return self.journeys.started

    def _push_wake(self, i: int) -> None:
        self._push(self.behaviours[i].next_wakeup(), WAKE, i, self._generation[i])

    def _push_day(self) -> None:
        assert self.now is not None
        # Order -1: before every other entry due at midnight, so all of that day draws anew.
        heapq.heappush(self._heap, (daily.next_local(self.now, time(0, 0)), -1, DAY, -1, None))

    def _push(self, due: datetime, action: int, i: int, extra: object) -> None:
        if self.now is not None and due < self.now:
            due = self.now  # simulated time never runs backwards
        heapq.heappush(self._heap, (due, next(self._order), action, i, extra))
