"""The whole street without I/O: every behaviour and the journey planner, in simulated-time order.

One heap of due instants drives everything, so the order of what happens depends only on the
fleet file, the seed and the start instant, never on the wall clock: the runner may step it in
real time, accelerated or as fast as possible and the devices publish the same events.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Collection, Iterator
from datetime import datetime

from contracts.fleet import Fleet
from devices.behaviour import Behaviour, Emission
from devices.journeys import JourneyPlanner, Step
from devices.kinds import behaviour_for
from devices.population import Population

WAKE, JOURNEY, STEP = 0, 1, 2
# (device index, simulated instant, what it publishes)
Published = tuple[int, datetime, Emission]
_Entry = tuple[datetime, int, int, int, object]


def device_rng(seed: int, device_id: str) -> random.Random:
    # Per device, so one device's randomness never depends on how many others there are.
    return random.Random(f"{seed}:{device_id}")


class Street:
    def __init__(
        self, fleet: Fleet, seed: int | None = None, *, only: Collection[str] | None = None
    ) -> None:
        self.seed = fleet.seed if seed is None else seed
        self.population = Population(fleet.population, self.seed)
        self.specs = [s for s in fleet.devices if not only or s.id in only]
        self.behaviours: list[Behaviour] = [
            behaviour_for(s.kind)(s, device_rng(self.seed, s.id), self.population)
            for s in self.specs
        ]
        self.journeys = JourneyPlanner(
            self.specs,
            random.Random(f"{self.seed}:journeys"),
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
        for i, behaviour in enumerate(self.behaviours):
            behaviour.start(now)
            self._push_wake(i)
            yield i
        if self.journeys.enabled:
            self.journeys.start(now)
            self._push(self.journeys.next_wakeup(), JOURNEY, -1, None)

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

    def _push(self, due: datetime, action: int, i: int, extra: object) -> None:
        if self.now is not None and due < self.now:
            due = self.now  # simulated time never runs backwards
        heapq.heappush(self._heap, (due, next(self._order), action, i, extra))
