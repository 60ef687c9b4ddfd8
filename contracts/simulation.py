"""The simulator's control plane: what a drill asks the running simulator to do to its devices.

Not part of the device contract: a real gate never takes these. The backend user (scenarios run
with its credentials) publishes an action on CONTROL_TOPIC; every simulator process applies it
to those of the named devices it hosts and answers on ACK_TOPIC with the devices it applied it
to, so a drill knows when nobody hosts a device (no simulator running) instead of waiting.

Durations (`for_s`) are seconds of STREET time (contracts/clock.py), so a drill means the same at
any speed: the simulator ends the action when its street has run `for_s` seconds past the moment
it applied it (at max, at that place in the street's order; paused, not before it resumes). An
action with `clock: "wall"` ends after `for_s` wall-clock seconds instead. Behaviour faults act
on the device's own model (a failed cooler warms the cabinet at the simulator's pace); network
faults act on its messages.
"""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import Field, model_validator

from contracts.envelope import Identifier, Token, WireModel

CONTROL_TOPIC = "lijia/sim/control"
ACK_TOPIC = "lijia/sim/acks"
SIMULATOR_USER = "simulator"

# Behaviour faults, by the kinds whose model knows them (devices/kinds/*: `Behaviour.fault`).
BehaviourFault = Literal["camera-failure", "door-jam", "cooler-failure", "sensor-drift"]
Seconds = Annotated[float, Field(gt=0, le=24 * 3600)]
Share = Annotated[float, Field(ge=0, le=1)]
ClockName = Literal["street", "wall"]
CLOCK_FIELD_HELP = "what `for_s` counts: street seconds (default) or wall-clock seconds"


class Target(WireModel):
    """Which devices: by id, by kind, or a share of the street (picked with a seed)."""

    device: Identifier | None = None
    devices: list[Identifier] = Field(default_factory=list, max_length=10_000)
    kind: Identifier | None = None
    share: Share | None = Field(
        default=None, description="this share of the matching devices, chosen by `seed`"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _something(self) -> Target:
        if not (self.device or self.devices) and self.kind is None and self.share is None:
            raise ValueError("a target names devices, a kind or a share of the street")
        return self


class FaultAction(WireModel):
    """A behaviour fault for `for_s` street seconds (then the device recovers by itself).

    `sensor-drift` adds `drift_per_min` (°C per simulated minute) to what the sensor reports."""

    action: Literal["fault"] = "fault"
    fault: BehaviourFault
    for_s: Seconds = 60.0
    clock: ClockName = Field(default="street", description=CLOCK_FIELD_HELP)
    drift_per_min: float = Field(default=0.5, ge=-100, le=100)


class NetworkAction(WireModel):
    """Network trouble on the device's events and telemetry for `for_s` street seconds: each
    message is dropped, duplicated, corrupted or held back (reordered) with these probabilities,
    delayed by `delay_s` (wall-clock seconds, whatever `clock`: it is the network's delay), and
    stamped `skew_s` off the true (street) time. Availability and command results go
    through untouched, so a drill never strands a command."""

    action: Literal["network"] = "network"
    for_s: Seconds = 60.0
    clock: ClockName = Field(default="street", description=CLOCK_FIELD_HELP)
    drop: Share = 0.0
    duplicate: Share = 0.0
    corrupt: Share = 0.0
    reorder: Share = 0.0
    delay_s: float = Field(default=0.0, ge=0, le=300)
    skew_s: float = Field(default=0.0, ge=-23 * 3600, le=23 * 3600)


class OfflineAction(WireModel):
    """The device leaves the network for `for_s` street seconds: `abrupt` (power or link lost: the
    broker publishes its Last Will) or `clean` (it says goodbye, then disconnects)."""

    action: Literal["offline"] = "offline"
    mode: Literal["abrupt", "clean"] = "abrupt"
    for_s: Seconds = 30.0
    clock: ClockName = Field(default="street", description=CLOCK_FIELD_HELP)


class LoadAction(WireModel):
    """Arrivals (visitors, residents, requests) at `factor` times the usual rate, or at a fixed
    `per_hour` whatever the hour, for `for_s` street seconds: a morning rush, a flu wave, an evening
    peak."""

    action: Literal["load"] = "load"
    factor: float | None = Field(default=None, ge=0, le=1000)
    per_hour: float | None = Field(default=None, ge=0, le=100_000)
    for_s: Seconds = 300.0
    clock: ClockName = Field(default="street", description=CLOCK_FIELD_HELP)

    @model_validator(mode="after")
    def _one(self) -> LoadAction:
        if (self.factor is None) == (self.per_hour is None):
            raise ValueError("a load change has exactly one of: factor, per_hour")
        return self


Action = Annotated[
    FaultAction | NetworkAction | OfflineAction | LoadAction, Field(discriminator="action")
]


def resolve(target: Target, street: dict[str, str]) -> list[str]:
    """The device ids a target names, given the street (device id -> kind). A share is drawn
    with the target's seed from the sorted candidates, so a drill always picks the same ones."""
    named = {*target.devices, *([target.device] if target.device else [])}
    unknown = sorted(named - street.keys())
    if unknown:
        raise ValueError(f"unknown device {unknown[0]!r}")
    chosen = sorted(
        d
        for d, kind in street.items()
        if (not named or d in named) and (target.kind is None or kind == target.kind)
    )
    if target.share is not None:
        chosen = sorted(
            random.Random(target.seed).sample(chosen, round(len(chosen) * target.share))
        )
    return chosen


class Control(WireModel):
    """One message on CONTROL_TOPIC: an action for these devices."""

    id: Token
    devices: list[Identifier] = Field(min_length=1, max_length=100_000)
    do: Action
    run_id: Token | None = None


class ControlAck(WireModel):
    """A simulator's answer: the devices it applied the action to, and those it could not."""

    id: Token
    simulator: Token
    applied: list[Identifier] = Field(default_factory=list)
    refused: dict[Identifier, str] = Field(default_factory=dict)
