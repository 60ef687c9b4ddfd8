"""The shapes of the backend API's answers that the clients read (the API sends more: see /docs).

Times are ISO 8601 strings, as on the wire. Wide payloads (a device's twin, stats, quality, health,
a drill run) stay `dict[str, Any]` in the client's signatures. The street's clock is read into
the contract's own models (contracts/clock.py), validated.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from pydantic import BaseModel

from contracts.clock import ClockAck, ClockView


class AlarmRow(TypedDict):
    id: int
    rule: str
    device_id: str
    kind: str
    severity: str
    title: str
    title_text: dict[str, str]
    status: str
    occurrences: int
    raised_at: str
    last_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    cleared_by: str | None
    cleared_at: str | None
    clear_reason: str | None
    details: dict[str, Any]


class AlarmNote(TypedDict):
    action: str
    author: str
    text: str | None
    at: str


class AlarmWithNotes(AlarmRow):
    """One alarm (GET /alarms/{id}) with its history of notes, oldest first."""

    notes: list[AlarmNote]


class CommandRow(TypedDict):
    command_id: str
    device_id: str
    name: str
    params: dict[str, Any]
    status: str
    reason: str | None
    created_at: str  # street time
    updated_at: str  # street time
    deliver_by: NotRequired[str | None]  # wall time: the delivery timeout


class EventsPage(TypedDict):
    data: list[dict[str, Any]]
    next_cursor: int | None


class DevicesPage(TypedDict):
    data: list[dict[str, Any]]
    count: int


class TelemetryPoint(TypedDict):
    bucket: str
    avg: float | None
    min: float | None
    max: float | None
    samples: int


class InjectAccepted(TypedDict):
    event_id: str
    topic: str


class DeadLetter(TypedDict):
    id: int
    topic: str
    reason: str
    received_at: str
    size: int
    sha256: str


class ShippedScenario(TypedDict):
    name: str
    description: str
    steps: int
    expectations: list[str]
    scenario: dict[str, Any]


class ClockChanged(BaseModel):
    """`POST /clock` applied: the clock as the backend follows it then, each simulator's ack."""

    clock: ClockView
    acks: list[ClockAck]
