"""The interface every simulated kind implements: pure state + seeded RNG + simulated time."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.fleet import DeviceSpec
from contracts.topics import Channel
from contracts.vocabulary import CommandResultStatus
from devices.daily import Arrivals
from devices.population import Population


class UnsupportedFault(ValueError):
    """The kind's model has no such fault (a drill asked a stereo for a cooler failure)."""


@dataclass(frozen=True)
class Emission:
    """Something the device wants to publish; the session wraps it in an envelope."""

    channel: Channel
    type: str
    data: BaseModel
    correlation_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a command ended on the device, and what it published because of it."""

    status: CommandResultStatus
    reason: str | None = None
    emissions: tuple[Emission, ...] = ()

    @classmethod
    def done(cls, emissions: tuple[Emission, ...] = ()) -> Outcome:
        return cls(CommandResultStatus.DONE, None, emissions)

    @classmethod
    def rejected(cls, reason: str, emissions: tuple[Emission, ...] = ()) -> Outcome:
        """Refused, with a reason the operator reads (the state did not allow it)."""
        return cls(CommandResultStatus.REJECTED, reason, emissions)


class Behaviour(ABC):
    """A device's behaviour. No I/O: it is driven by `wake` at the instants it asks for."""

    kind: ClassVar[str]
    next_telemetry: datetime  # when the periodic telemetry is due (each kind's `start` sets it)

    def __init__(self, spec: DeviceSpec, rng: random.Random, population: Population) -> None:
        self.spec = spec
        self.rng = rng
        self.population = population

    def rate(self, name: str, default: float) -> float:
        return float(self.spec.rates.get(name, default))

    def telemetry_due(self, now: datetime, every_s: float) -> bool:
        """Is the periodic telemetry due at `now`? If so, the next one is set for the device's
        `telemetry_every_s` rate (else `every_s`) later."""
        if now < self.next_telemetry:
            return False
        self.next_telemetry = now + timedelta(seconds=self.rate("telemetry_every_s", every_s))
        return True

    @abstractmethod
    def start(self, now: datetime) -> None:
        """Set up the schedule from the simulated start instant."""

    @abstractmethod
    def next_wakeup(self) -> datetime:
        """The simulated instant at which `wake` must be called next."""

    @abstractmethod
    def wake(self, now: datetime) -> list[Emission]:
        """Advance to `now` (the instant asked for) and return what to publish."""

    @abstractmethod
    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        """Apply a validated command."""

    def journey_step(self, resident: str, correlation_id: str, now: datetime) -> list[Emission]:
        """A resident on a linked journey (devices/journeys.py) comes by at `now`.

        Kinds that take part override this: they serve the resident like anyone else (the same
        state, the same invariants) and tag what they publish with `correlation_id`. The
        default takes no part. Like `wake`, it may change `next_wakeup`.
        """
        return []

    # -- drills (devices/control.py): faults and load changes a scenario asks for ---------------
    def fault(
        self, fault: str, on: bool, now: datetime, drift_per_min: float = 0.0
    ) -> list[Emission]:
        """Start (`on`) or end a behaviour fault at `now`; what the device publishes because of
        it. Kinds override this for the faults their model knows; the rest refuse."""
        raise UnsupportedFault(f"a {self.kind} has no {fault}")

    def set_load(self, now: datetime, factor: float | None, per_hour: float | None) -> int:
        """Arrivals at `factor` times the usual rate, or at a fixed `per_hour` (None, None: back
        to normal), redrawn from `now`. Returns how many arrival processes the kind has."""
        processes = [v for v in vars(self).values() if isinstance(v, Arrivals)]
        for arrivals in processes:
            arrivals.load = 1.0 if factor is None else factor
            arrivals.fixed = per_hour
            arrivals.plan(now)
        return len(processes)

    def describe(self) -> dict[str, Any]:
        return {"device_id": self.spec.id, "kind": self.kind}
