"""Face-recognition gate at a community entrance: entry in about 3 seconds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.alarms import BurstRule, EventRule
from contracts.envelope import ResidentRef, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "gate"


class EntryGranted(WireModel):
    """A person went through. Face matches are decided on the device; only the result travels."""

    method: Literal["face", "card", "qr", "pin", "remote"]
    direction: Literal["in", "out"] = "in"
    resident: ResidentRef | None = Field(
        default=None, description="pseudonymous resident reference; none for QR visitors"
    )
    score: float | None = Field(
        default=None, ge=0, le=1, description="face match score, rounded to 2 decimals"
    )
    duration_ms: int = Field(
        default=2500, ge=0, le=60_000, description="from approach to door open (target < 3000)"
    )


class EntryDenied(WireModel):
    method: Literal["face", "card", "qr", "pin"]
    reason: Literal["unknown-face", "low-confidence", "blocklisted", "expired-pass", "lockdown"]
    resident: ResidentRef | None = None
    score: float | None = Field(default=None, ge=0, le=1)


class Tailgating(WireModel):
    """More people passed than were granted."""

    extra_people: int = Field(default=1, ge=1, le=20)


class DoorHeldOpen(WireModel):
    seconds: int = Field(ge=1, le=86_400)


class CameraFault(WireModel):
    """The face camera stopped; entries fall back to card, QR and PIN until it recovers."""

    reason: Literal["no-signal", "lens-obscured", "overheating", "firmware-crash"]


class CameraRecovered(WireModel):
    down_s: int = Field(ge=0, le=30 * 86_400, description="how long face entry was unavailable")


class GateTelemetry(WireModel):
    door: Literal["open", "closed", "locked"]
    people_in: int = Field(ge=0)
    people_out: int = Field(ge=0)
    avg_entry_ms: int = Field(ge=0)
    lockdown: bool = False
    camera: Literal["ok", "fault"] = "ok"


class OpenOnce(WireModel):
    """Open the door for one passage."""


class LockDown(WireModel):
    reason: str = Field(default="operator", max_length=100)


class Release(WireModel):
    """End a lockdown."""


SPEC = KindSpec(
    kind=KIND,
    label=Text("Face-recognition gate", "人脸识别门禁"),
    telemetry=GateTelemetry,
    commands={"open-once": OpenOnce, "lock-down": LockDown, "release": Release},
    events={
        "entry-granted": EntryGranted,
        "entry-denied": EntryDenied,
        "tailgating": Tailgating,
        "door-held-open": DoorHeldOpen,
        "camera-fault": CameraFault,
        "camera-recovered": CameraRecovered,
    },
    personal_events=frozenset({"entry-granted", "entry-denied"}),
    alarms=(
        BurstRule(
            "repeated-denials",
            Severity.MAJOR,
            Text("Repeated denied entries", "多次拒绝进入"),
            event_type="entry-denied",
            count=5,
            window_s=120,
            where={"reason": ("unknown-face", "low-confidence", "blocklisted")},
        ),
        # Half an hour without another one: time for a guard to walk over, look and report
        # (and, at 60x, half a wall-minute for an operator to see it on the console).
        EventRule("tailgating", Severity.MAJOR, Text("Tailgating", "尾随进入"), clear_after_s=1800),
        EventRule(
            "door-held-open",
            Severity.MINOR,
            Text("Door held open", "门长时间未关"),
            clear_after_s=600,
        ),
        EventRule(
            "camera-fault",
            Severity.MINOR,
            Text("Face camera down", "人脸摄像头故障"),
            clear_on=("camera-recovered",),
        ),
    ),
    stats=(
        StatSpec(
            "entries", Text("Entries through the gates", "闸机通行"), event_type="entry-granted"
        ),
        StatSpec(
            "entries-within-3s",
            Text("Entries within 3 s", "3秒内通行"),
            event_type="entry-granted",
            at_most={"duration_ms": 3000},
        ),
        StatSpec("denied", Text("Denied entries", "拒绝通行"), event_type="entry-denied"),
    ),
)
