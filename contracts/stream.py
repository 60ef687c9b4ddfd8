"""The live stream's messages (`GET /stream`, server-sent events): one model per message type.

The SSE `event:` field is the message's `TOPIC`; `data:` is the model as JSON. Lines that
begin with `:` are comments (`: connected`, `: keepalive`) and carry nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.clock import ClockView
from contracts.vocabulary import AlarmStatus, Availability, Severity

StreamTopic = Literal["event", "alarm", "availability", "clock", "resync"]


class StreamMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    TOPIC: ClassVar[StreamTopic]


class EventMessage(StreamMessage):
    """A newly stored event (events channel only; not telemetry or command results)."""

    TOPIC: ClassVar[StreamTopic] = "event"
    event_id: str
    device_id: str
    kind: str
    type: str
    ts: datetime
    injected: bool
    data: dict[str, Any]


class AlarmMessage(StreamMessage):
    """An alarm changed status: raised (active), acknowledged or cleared, by whom."""

    TOPIC: ClassVar[StreamTopic] = "alarm"
    alarm_id: int
    rule: str
    device_id: str
    status: AlarmStatus
    severity: Severity
    by: str


class AvailabilityMessage(StreamMessage):
    """A device's availability changed (its own state message, or marked silent)."""

    TOPIC: ClassVar[StreamTopic] = "availability"
    device_id: str
    availability: Availability
    availability_reason: str | None = None
    availability_changed_at: datetime | None = None


class ClockMessage(StreamMessage):
    """The street's clock changed (a simulator appeared or went, paused, resumed, changed speed,
    jumped; at "max", how far it got): the clock as `GET /clock` shows it."""

    TOPIC: ClassVar[StreamTopic] = "clock"
    clock: ClockView


class ResyncMessage(StreamMessage):
    """This subscriber fell behind: the server dropped the `missed` oldest messages it had not
    sent yet, and the next messages follow on from the newest ones. The stream is a view, the
    REST lists are the record: read them again (`GET /events`, `/alarms`, `/devices`) to
    catch up. A subscriber whose connection accepts nothing for `LIJIA_STREAM_STALL_TIMEOUT_S`
    is disconnected instead."""

    TOPIC: ClassVar[StreamTopic] = "resync"
    missed: int = Field(ge=1, description="messages this subscriber lost")


AnyStreamMessage = EventMessage | AlarmMessage | AvailabilityMessage | ClockMessage | ResyncMessage
STREAM_MESSAGES: tuple[type[StreamMessage], ...] = (
    EventMessage,
    AlarmMessage,
    AvailabilityMessage,
    ClockMessage,
    ResyncMessage,
)
