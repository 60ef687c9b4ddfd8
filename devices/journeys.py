"""Linked journeys: one resident through devices of several kinds under one correlation id.

As the street is described to us: "one resident passes the gate, borrows a book, takes
medicine, files a request; the events share a correlation id so a journey can be followed".
The planner only decides who goes
where and when, from its own seeded RNG and a day curve (`daily.JOURNEY`); each device serves the
resident through `Behaviour.journey_step` with its own state, so a book borrowed on a journey
leaves the shelf like any other, and kinds never need to know about each other.

A journey starts at a gate (chosen in proportion to the gates' traffic) and then visits the
nearest device of each later kind on the street map, minutes apart in simulated time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.fleet import DeviceSpec
from devices import daily
from devices.population import Population


@dataclass(frozen=True)
class Leg:
    kind: str
    # Minutes after the previous leg, drawn uniformly: walking, browsing, going home.
    after_min: tuple[float, float]


ROUTE: tuple[Leg, ...] = (
    Leg("gate", (0.0, 0.0)),  # comes home through the compound's gate
    Leg("book-house", (4.0, 15.0)),  # walks over to the reading room, borrows a book
    Leg("medicine-cabinet", (8.0, 25.0)),  # then the cabinet on the way
    Leg("property-app", (15.0, 90.0)),  # at home, reports what needs fixing
)


@dataclass(frozen=True)
class Step:
    """One resident due at one device (an index into the street's device list)."""

    at: datetime
    device: int
    resident: str
    correlation_id: str


class JourneyPlanner:
    """Starts journeys as a Poisson process following `daily.JOURNEY`; plans every leg at once."""

    def __init__(
        self,
        specs: Sequence[DeviceSpec],
        rng: random.Random,
        population: Population,
        per_hour: float,
        route: Sequence[Leg] = ROUTE,
    ) -> None:
        self.specs = specs
        self.rng = rng
        self.population = population
        self.per_hour = per_hour
        self.route = tuple(route)
        first = self.route[0].kind
        self.gates = [i for i, s in enumerate(specs) if s.kind == first]
        self.weights = [
            max(specs[i].rates.get("arrivals_per_hour", 120.0), 0.001) for i in self.gates
        ]
        self.by_kind = {
            leg.kind: [i for i, s in enumerate(specs) if s.kind == leg.kind] for leg in self.route
        }
        self._routes: dict[int, list[int | None]] = {}
        self.started = 0

    @property
    def enabled(self) -> bool:
        return self.per_hour > 0 and bool(self.gates)

    def start(self, now: datetime) -> None:
        self.arrivals = daily.Arrivals(self.rng, self.per_hour, daily.JOURNEY, now)

    def next_wakeup(self) -> datetime:
        return self.arrivals.due

    def wake(self, now: datetime) -> list[Step]:
        """Call at `next_wakeup()`: the legs of a journey starting now, if one does."""
        if not self.arrivals.fire(now):
            return []  # only an hour boundary of the day curve
        rng = self.rng
        gate = rng.choices(self.gates, self.weights)[0]
        resident = self.population.pick(rng)
        correlation_id = f"journey-{rng.getrandbits(64):016x}"
        self.started += 1
        steps: list[Step] = []
        at = now
        for leg, device in zip(self.route, self._route(gate), strict=True):
            lo, hi = leg.after_min
            at = at + timedelta(minutes=rng.uniform(lo, hi))
            if device is not None:
                steps.append(Step(at, device, resident, correlation_id))
        return steps

    def _route(self, gate: int) -> list[int | None]:
        """The gate, then the nearest device of each later kind (None if the street has none)."""
        route = self._routes.get(gate)
        if route is None:
            here = self.specs[gate].position
            route = [gate]
            for leg in self.route[1:]:
                candidates = self.by_kind[leg.kind]
                route.append(
                    min(
                        candidates,
                        key=lambda i: (
                            (self.specs[i].position.x - here.x) ** 2
                            + (self.specs[i].position.y - here.y) ** 2,
                            i,
                        ),
                    )
                    if candidates
                    else None
                )
            self._routes[gate] = route
        return route
