"""Smart school gate: pupils in and out on school days, guardians' pick-ups, registered visitors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.alarms import TelemetryRule
from contracts.envelope import ResidentRef, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "school"


class StudentArrived(WireModel):
    """A pupil passed the gate in the morning (pseudonym only: these are children)."""

    student: ResidentRef


class StudentDeparted(WireModel):
    """A pupil allowed to walk home alone left the gate."""

    student: ResidentRef


class PickedUp(WireModel):
    """A registered guardian collected a pupil at the gate."""

    student: ResidentRef
    guardian: ResidentRef


class VisitorRegistered(WireModel):
    """A visitor signed in at the gate during the school day."""

    purpose: Literal["parent-meeting", "delivery", "maintenance", "inspection", "other"]
    method: Literal["id-card", "qr"] = "id-card"
    resident: ResidentRef | None = Field(
        default=None, description="when the visitor is a resident (e.g. a parent)"
    )


class SchoolTelemetry(WireModel):
    present: int = Field(ge=0, le=10_000)
    arrived_today: int = Field(ge=0, le=10_000)
    departed_today: int = Field(ge=0, le=10_000)
    enrolled: int = Field(default=0, ge=0, le=10_000)
    gate: Literal["open", "closed", "locked"]


class OpenGate(WireModel):
    """Open the gate for a while outside the arrival and pick-up windows (e.g. a delivery)."""

    minutes: int = Field(default=5, ge=1, le=120)


class LockDown(WireModel):
    """Keep everyone in and nobody out until released (drill or incident)."""

    reason: str = Field(default="operator", max_length=100)


class Release(WireModel):
    """End a lockdown; pupils held at the gate go through."""


SPEC = KindSpec(
    kind=KIND,
    label=Text("Smart school gate", "智慧学校"),
    telemetry=SchoolTelemetry,
    commands={"open-gate": OpenGate, "lock-down": LockDown, "release": Release},
    events={
        "student-arrived": StudentArrived,
        "student-departed": StudentDeparted,
        "picked-up": PickedUp,
        "visitor-registered": VisitorRegistered,
    },
    personal_events=frozenset(
        {"student-arrived", "student-departed", "picked-up", "visitor-registered"}
    ),
    alarms=(
        TelemetryRule(
            "school-lockdown",
            Severity.MAJOR,
            Text("School gate locked down", "校门封闭"),
            field="gate",
            op="==",
            value="locked",
        ),
    ),
    stats=(
        StatSpec("arrivals", Text("Pupils arrived", "到校"), event_type="student-arrived"),
        StatSpec("picked-up", Text("Pupils picked up", "接走"), event_type="picked-up"),
    ),
)
