"""Community Bluetooth stereo in a public leisure area: residents pair a phone and play music."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from contracts.alarms import EventRule
from contracts.envelope import ResidentRef, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "stereo"

ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Volume = Annotated[int, Field(ge=0, le=100)]
PairedCount = Annotated[int, Field(ge=0, le=16)]


class QuietHours(WireModel):
    """A daily stretch of local (Chongqing) time; it may run past midnight."""

    start: ClockTime = "22:00"
    end: ClockTime = "07:00"


class DevicePaired(WireModel):
    resident: ResidentRef
    paired_count: PairedCount


class DeviceUnpaired(WireModel):
    resident: ResidentRef
    paired_count: PairedCount
    reason: Literal["left", "operator"] = "left"


class TrackStarted(WireModel):
    """No title or artist: what a resident listens to stays on their phone."""

    genre: Literal["square-dance", "pop", "folk", "sichuan-opera", "classical", "children"]
    duration_s: int = Field(ge=1, le=3600)
    volume: Volume


class TrackStopped(WireModel):
    reason: Literal["ended", "operator", "unpaired"]
    played_s: int = Field(ge=0, le=3600)


class VolumeChanged(WireModel):
    volume_from: Volume
    volume_to: Volume
    by: Literal["user", "operator", "limiter"]


class QuietHoursViolation(WireModel):
    """Music above the quiet-hours limit during quiet hours (once per track or change)."""

    volume: Volume
    limit: Volume
    quiet_hours: QuietHours


class StereoTelemetry(WireModel):
    playing: bool
    volume: Volume
    paired_count: PairedCount
    quiet_hours: QuietHours
    quiet_volume_max: Volume = 35


class SetVolume(WireModel):
    volume: Volume


class Stop(WireModel):
    """Stop the music; the phone that was playing is disconnected."""


class SetQuietHours(WireModel):
    start: ClockTime
    end: ClockTime
    max_volume: Volume | None = Field(default=None, description="loudest allowed in quiet hours")


SPEC = KindSpec(
    kind=KIND,
    label=Text("Community Bluetooth stereo", "社区蓝牙音箱"),
    telemetry=StereoTelemetry,
    commands={"set-volume": SetVolume, "stop": Stop, "set-quiet-hours": SetQuietHours},
    events={
        "device-paired": DevicePaired,
        "device-unpaired": DeviceUnpaired,
        "track-started": TrackStarted,
        "track-stopped": TrackStopped,
        "volume-changed": VolumeChanged,
        "quiet-hours-violation": QuietHoursViolation,
    },
    personal_events=frozenset({"device-paired", "device-unpaired"}),
    alarms=(
        EventRule(
            "quiet-hours-violation",
            Severity.MINOR,
            Text("Music in quiet hours", "安静时段播放"),
            clear_after_s=1800,
        ),
    ),
    stats=(StatSpec("tracks", Text("Tracks played", "播放曲目"), event_type="track-started"),),
)
