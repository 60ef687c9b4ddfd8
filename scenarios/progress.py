"""What a run reports while it plays: typed progress events, each with its line of plain text.

The engine hands them to a sink (a callable); the terminal (scenarios.cli) styles them, the
backend keeps their text as the run's log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StepStarted:
    """A step of the timeline begins (`index` counts from 1)."""

    index: int
    label: str  # the step's id, or its action
    elapsed_s: float  # since the start of the run

    @property
    def text(self) -> str:
        return f"+{self.elapsed_s:5.1f} s {self.body}"

    @property
    def body(self) -> str:
        return f"step {self.index} {self.label}"


@dataclass(frozen=True)
class StepDone:
    """A step has been played (or its pause has run to its end)."""

    done: int
    total: int

    @property
    def text(self) -> str:
        return f"timeline {self.done}/{self.total} steps"


@dataclass(frozen=True)
class Injected:
    """An envelope was published as the device (events or telemetry)."""

    channel: str
    event_type: str
    device_id: str
    event_id: str

    @property
    def text(self) -> str:
        return f"inject {self.channel} {self.event_type} → {self.device_id} ({self.event_id})"


@dataclass(frozen=True)
class CommandSent:
    """A command was sent to a device through the backend."""

    name: str
    device_id: str
    command_id: str
    status: str

    @property
    def text(self) -> str:
        return f"command {self.name} → {self.device_id} ({self.command_id}, {self.status})"


@dataclass(frozen=True)
class DrillSent:
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
class VerdictReached:
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
class StepFailed:
    """The timeline ended early on an error; undecided expectations will fail."""

    error: str

    @property
    def text(self) -> str:
        return f"step failed: {self.error}"


@dataclass(frozen=True)
class Stopped:
    """The operator stopped the run."""

    @property
    def text(self) -> str:
        return "stopped by the operator"


RunEvent = (
    StepStarted
    | StepDone
    | Injected
    | CommandSent
    | DrillSent
    | VerdictReached
    | StepFailed
    | Stopped
)
Sink = Callable[[RunEvent], None]


def ignore(_event: RunEvent) -> None:
    """The sink of a run nobody follows."""
