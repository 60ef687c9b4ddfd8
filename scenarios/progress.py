"""What a run reports while it plays: typed progress events, each with its line of plain text.

The engine hands them to a sink (a callable); the terminal (scenarios.cli) styles them, the
backend keeps their text as the run's log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from contracts.vocabulary import STREET_TZ


@dataclass(frozen=True)
class Progress:
    """A progress event; its `text` is the class's `line` filled in with its fields."""

    line: ClassVar[str] = ""

    @property
    def text(self) -> str:
        return self.line.format_map(vars(self))


@dataclass(frozen=True)
class StepStarted(Progress):
    """A step of the timeline begins (`index` counts from 1)."""

    index: int
    label: str  # the step's id, or its action
    elapsed_s: float  # since the start of the run, in street seconds

    @property
    def text(self) -> str:
        return f"+{self.elapsed_s:5.1f} s {self.body}"

    @property
    def body(self) -> str:
        return f"step {self.index} {self.label}"


@dataclass(frozen=True)
class StepDone(Progress):
    """A step has been played (or its pause has run to its end)."""

    line = "timeline {done}/{total} steps"
    done: int
    total: int


@dataclass(frozen=True)
class Injected(Progress):
    """An envelope was published as the device (events or telemetry)."""

    line = "inject {channel} {event_type} → {device_id} ({event_id})"
    channel: str
    event_type: str
    device_id: str
    event_id: str


@dataclass(frozen=True)
class CommandSent(Progress):
    """A command was sent to a device through the backend."""

    line = "command {name} → {device_id} ({command_id}, {status})"
    name: str
    device_id: str
    command_id: str
    status: str


@dataclass(frozen=True)
class DrillSent(Progress):
    """The simulators applied a drill (a fault, network trouble, an outage, a load change)."""

    what: str
    devices: tuple[str, ...]
    for_s: float

    @property
    def text(self) -> str:
        shown = ", ".join(self.devices[:3])
        if len(self.devices) > 3:
            shown += f" +{len(self.devices) - 3}"
        return f"{self.what} → {len(self.devices)} device(s) ({shown}) for {self.for_s:g} s"


@dataclass(frozen=True)
class ClockSet(Progress):
    """The street's clock took a step's action (pause, resume, speed, jump)."""

    action: str
    street: datetime  # the street's time once it took it
    speed: str  # as contracts.clock.speed_label shows it
    paused: bool

    @property
    def text(self) -> str:
        local = self.street.astimezone(STREET_TZ).strftime("%Y-%m-%d %H:%M:%S")
        state = "paused" if self.paused else self.speed
        return f"street clock: {self.action} → {local} ({state})"


@dataclass(frozen=True)
class VerdictReached(Progress):
    """An expectation was decided before the end of the run."""

    name: str
    passed: bool
    seen: str
    elapsed_s: float  # since the step it waits for (or the start of the run)

    @property
    def mark(self) -> str:
        return "✔" if self.passed else "✘"

    @property
    def body(self) -> str:
        return f"{self.name}: {self.seen} (+{self.elapsed_s:.1f} s)"

    @property
    def text(self) -> str:
        return f"{self.mark} {self.body}"


@dataclass(frozen=True)
class StepFailed(Progress):
    """The timeline ended early on an error; undecided expectations will fail."""

    line = "step failed: {error}"
    error: str


@dataclass(frozen=True)
class Stopped(Progress):
    """The operator stopped the run."""

    line = "stopped by the operator"


RunEvent = (
    StepStarted
    | StepDone
    | Injected
    | CommandSent
    | DrillSent
    | ClockSet
    | VerdictReached
    | StepFailed
    | Stopped
)
Sink = Callable[[RunEvent], None]


def ignore(_event: RunEvent) -> None:
    """The sink of a run nobody follows."""
