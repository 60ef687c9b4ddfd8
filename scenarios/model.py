"""The scenario file format (YAML), as pydantic models; `scenarios/schema.json` is generated
from them (`python -m scenarios schema`) and a test fails when the two disagree.

A scenario is a timeline of steps (each at an offset in seconds from the start of the run, or
right after the previous step) and a list of expectations, each with a deadline.

Every duration (a step's `at` and `wait`, a drill's `for_s`, a command's and an expectation's
`within`) is in seconds of STREET time (contracts/clock.py: the simulator's clock, wall time
without one) unless the step or expectation says `clock: wall`, so a drill means the same at
any speed. A step can also act on the street's clock: `clock: {action: speed, speed: 60}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.clock import ClockAction
from contracts.envelope import Identifier, Token
from contracts.simulation import FaultAction, LoadAction, NetworkAction, OfflineAction, Target
from contracts.vocabulary import CommandStatus
from scenarios.timeline import ClockName

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"
DRILLS_DIR = Path(__file__).resolve().parent / "drills"

# The backend refuses device clocks more than a day off ("clock-skew"); stay well inside.
MAX_TS_OFFSET_S = 23 * 3600.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _one_of(self, names: tuple[str, ...], what: str) -> str:
        """Which of the optional fields `names` is given; ValueError unless exactly one is."""
        given = [name for name in names if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"{what} has exactly one of: {', '.join(names)}")
        return given[0]


# -- steps -------------------------------------------------------------------------------------
class InjectEvent(Strict):
    """One event published as the device itself, flagged `injected: true`, seq 0.

    String values in `data` and `correlation_id` may use templates: `{{run_id}}`, `{{now}}`,
    `{{now+30s}}`, `{{now-5s}}` (UTC, ISO 8601, the street's time at the moment of injection);
    the envelope's `ts` is the street's time too."""

    device: Identifier
    type: Identifier
    data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=200)
    ts_offset_s: float = Field(
        default=0.0,
        ge=-MAX_TS_OFFSET_S,
        le=MAX_TS_OFFSET_S,
        description="device time = street now + this (seconds); e.g. -330 to back-date the "
        "start of a condition that must hold for 300 s. The backend refuses clocks more than a "
        "day off.",
    )


class InjectTelemetry(Strict):
    """One telemetry envelope (type `telemetry`) published as the device, `injected: true`."""

    device: Identifier
    data: dict[str, Any]
    correlation_id: str | None = Field(default=None, max_length=200)
    ts_offset_s: float = Field(default=0.0, ge=-MAX_TS_OFFSET_S, le=MAX_TS_OFFSET_S)


class SendCommand(Strict):
    """A command sent through the API (`POST /devices/{device}/commands`)."""

    device: Identifier
    name: Identifier
    params: dict[str, Any] = Field(default_factory=dict)
    expect: CommandStatus | list[CommandStatus] | None = Field(
        default=None,
        description="the command must end in (one of) these states within `within` seconds "
        "(street seconds unless the step says `clock: wall`)",
    )
    within: float = Field(default=15.0, gt=0, le=3600)


# Drills on the running simulator (contracts/simulation.py): a target (device, devices, kind,
# share + seed) and the action's own fields, side by side in one mapping.
class FaultStep(FaultAction, Target):
    """A behaviour fault on the target devices for `for_s` seconds (camera-failure and
    door-jam on gates; cooler-failure, door-jam and sensor-drift on medicine cabinets)."""

    def action_part(self) -> FaultAction:
        return FaultAction.model_validate(self.model_dump(include=set(FaultAction.model_fields)))


class NetworkStep(NetworkAction, Target):
    """Network trouble on the target devices' messages for `for_s` seconds."""

    def action_part(self) -> NetworkAction:
        fields = set(NetworkAction.model_fields)
        return NetworkAction.model_validate(self.model_dump(include=fields))


class OfflineStep(OfflineAction, Target):
    """The target devices leave the network (abruptly: Last Will; or cleanly) for `for_s`."""

    def action_part(self) -> OfflineAction:
        fields = set(OfflineAction.model_fields)
        return OfflineAction.model_validate(self.model_dump(include=fields))


class LoadStep(LoadAction, Target):
    """Arrivals at the target devices change for `for_s` seconds (a rush, a flu wave)."""

    def action_part(self) -> LoadAction:
        return LoadAction.model_validate(self.model_dump(include=set(LoadAction.model_fields)))


DrillStep = FaultStep | NetworkStep | OfflineStep | LoadStep
DRILL_ACTIONS = ("fault", "network", "offline", "load")


ACTIONS = ("inject", "telemetry", "command", "wait", *DRILL_ACTIONS, "clock")
CLOCKS: tuple[ClockName, ...] = ("street", "wall")


class Step(Strict):
    """Exactly one of inject / telemetry / command / wait / fault / network / offline / load /
    clock (an action on the street's clock: pause, resume, speed, jump).

    Its durations (`at`, `wait`, a drill's `for_s`, a command's `within`) are street seconds;
    `clock: wall` makes them wall-clock seconds (e.g. waiting for a device to reconnect)."""

    id: Token | None = Field(default=None, description="name to refer to from expectations")
    at: float | None = Field(
        default=None,
        ge=0,
        le=24 * 3600,
        description="seconds from the start of the run; omitted: right after the previous step",
    )
    clock: ClockName | ClockAction = Field(
        default="street",
        description="`street` (default) or `wall`: the clock of this step's durations; or a "
        "mapping, the step's action on the street's clock: {action: pause | resume | speed "
        '(with `speed`: a number or "max") | jump (with `at`: a street time of day, or `to`: '
        "an instant)}, refused with the reason when it cannot apply (no simulator, at max)",
    )
    inject: InjectEvent | None = None
    telemetry: InjectTelemetry | None = None
    command: SendCommand | None = None
    wait: float | None = Field(default=None, ge=0, le=3600, description="pause, in seconds")
    fault: FaultStep | None = None
    network: NetworkStep | None = None
    offline: OfflineStep | None = None
    load: LoadStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        self._action()
        return self

    def _action(self) -> str:
        given = [name for name in ACTIONS[:-1] if getattr(self, name) is not None]
        given += ["clock"] if self.clock_action is not None else []
        if len(given) != 1:
            raise ValueError(f"a step has exactly one of: {', '.join(ACTIONS)}")
        return given[0]

    @property
    def action(self) -> str:
        return self._action()

    @property
    def clock_action(self) -> ClockAction | None:
        """The action on the street's clock, if this step is one."""
        return None if isinstance(self.clock, str) else self.clock

    @property
    def timing(self) -> ClockName:
        """The clock of this step's durations (a clock action's step: the street's)."""
        return "wall" if self.clock == "wall" else "street"

    @property
    def drill(self) -> DrillStep | None:
        """The drill for the simulator, if this step is one."""
        return self.fault or self.network or self.offline or self.load


# -- expectations ------------------------------------------------------------------------------
Within = Annotated[
    float,
    Field(
        gt=0,
        le=3600,
        description="deadline in seconds (from `after`): street seconds unless the expectation "
        "says `clock: wall`",
    ),
]


class ExpectAlarm(Strict):
    """An alarm of `rule` on `device` was raised (a new alarm, or one more occurrence of an
    open one) or cleared (an alarm open at the start or raised since then is now cleared)."""

    device: Identifier
    rule: Identifier
    state: Literal["raised", "cleared"] = "raised"
    within: Within = 10.0


class ExpectTwin(Strict):
    """A field of `GET /devices/{device}` reaches a value: `availability`, `telemetry.NAME`
    (dotted paths go deeper), `open_alarms`, ..."""

    device: Identifier
    field: str = Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: Any
    within: Within = 10.0


class ExpectEvents(Strict):
    """The number of stored envelopes matching `GET /events` filters is at least / at most N.
    `this_run: true` (default) filters on the run's id. With `at_most`, the count is taken at
    the deadline (nothing more may arrive); with only `at_least`, as soon as it is reached."""

    device: Identifier | None = None
    kind: Identifier | None = None
    type: Identifier | None = None
    channel: Literal["events", "telemetry", "command-results"] = "events"
    injected: bool | None = None
    this_run: bool = True
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)
    within: Within = 10.0

    @model_validator(mode="after")
    def _bounds(self) -> ExpectEvents:
        if self.at_least is None and self.at_most is None:
            raise ValueError("an events expectation needs at_least and/or at_most")
        return self


class ExpectShare(Strict):
    """Of the events of `type` stamped since the start (or the step `after`), the share whose
    `data.FIELD op value` holds is at least `at_least`, counted once `min_count` have arrived:
    e.g. the share of face entries that took at most 3 s during a morning rush. Simulated
    traffic carries no run id, so unlike `events` this counts the street's own events."""

    device: Identifier | None = None
    kind: Identifier | None = None
    type: Identifier
    where: dict[Identifier, Any] = Field(
        default_factory=dict, description="only events whose data has these values"
    )
    field: str = Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "<="
    value: Any
    at_least: float = Field(ge=0, le=1)
    min_count: int = Field(default=20, ge=1, le=10_000)
    within: Within = 60.0


class ExpectDevices(Strict):
    """How many devices (of `kind`) have a twin field `op value`: e.g. at least 12 devices
    with `availability == offline` after a power cut."""

    kind: Identifier | None = None
    field: str = Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
    op: Literal["==", "!=", "<", "<=", ">", ">="] = "=="
    value: Any
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)
    within: Within = 10.0

    @model_validator(mode="after")
    def _bounds(self) -> ExpectDevices:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a devices expectation needs at_least and/or at_most")
        return self


class ExpectCommand(Strict):
    """The command sent by step `step` ends in (one of) `status`."""

    step: Token
    status: CommandStatus | list[CommandStatus]
    within: Within = 15.0


CHECKS = ("alarm", "twin", "events", "command", "share", "devices")
Check = ExpectAlarm | ExpectTwin | ExpectEvents | ExpectCommand | ExpectShare | ExpectDevices


class Expectation(Strict):
    """Exactly one of alarm / twin / events / command / share / devices, with an optional
    name."""

    name: str | None = Field(default=None, max_length=200)
    after: Token | None = Field(
        default=None,
        description="id of a step: the deadline counts from when it ran (default: run start), "
        "and only what is seen after it counts",
    )
    clock: ClockName = Field(
        default="street", description="the clock of the deadline `within`: street or wall"
    )
    alarm: ExpectAlarm | None = None
    twin: ExpectTwin | None = None
    events: ExpectEvents | None = None
    command: ExpectCommand | None = None
    share: ExpectShare | None = None
    devices: ExpectDevices | None = None

    @model_validator(mode="after")
    def _one_check(self) -> Expectation:
        self._one_of(CHECKS, "an expectation")
        return self

    @property
    def check(self) -> Check:
        check: Check = getattr(self, self._one_of(CHECKS, "an expectation"))
        return check


class Scenario(Strict):
    """A drill: a timeline of steps and the expectations that make its verdict."""

    name: Token
    description: str = ""
    steps: list[Step] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        ids = [s.id for s in self.steps if s.id]
        if len(ids) != len(set(ids)):
            raise ValueError("step ids must be unique")
        known = set(ids)
        command_steps = {s.id for s in self.steps if s.id and s.command is not None}
        for s in self.steps:
            # Its implicit expectation names the step; without an id nothing would be checked.
            if s.command is not None and s.command.expect is not None and not s.id:
                raise ValueError(f"command step {s.command.name!r} with `expect` needs an `id`")
        for e in self.expect:
            if e.after is not None and e.after not in known:
                raise ValueError(f"expectation refers to unknown step {e.after!r}")
            if e.command is not None and e.command.step not in command_steps:
                raise ValueError(
                    f"command expectation refers to {e.command.step!r}, not a command step"
                )
        return self


def needs_street(scenario: Scenario) -> bool:
    """Does it act on the running simulator (faults, outages, load), or only inject?"""
    return any(step.drill is not None for step in scenario.steps)


def load_scenario(path: Path | str) -> Scenario:
    """Raises ValueError (pydantic's ValidationError is one) for a file that is not a scenario."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{Path(path).name} is not valid YAML: {exc}") from None
    return Scenario.model_validate(raw)


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://lijia.street/scenarios/schema.json"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def shipped() -> list[Path]:
    return sorted(DRILLS_DIR.glob("*.yaml"))
