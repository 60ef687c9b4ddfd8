"""Request and response models of the API (separate from tables and from the wire contract)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    computed_field,
)

from backend.quality import BrokerDrops
from contracts.clock import ClockAck, ClockView
from contracts.envelope import Identifier, Token
from contracts.text import Text as Bilingual
from contracts.validation import ContractError, check_unicode

# Database row ids fit in 63 bits; larger numbers are a 422, not a database error.
MAX_ROW_ID = 2**63 - 1


def _storable(value: str) -> str:
    try:
        check_unicode(value)
    except ContractError as exc:
        raise ValueError(exc.reason) from None
    return value


# Free text that a database can store (no lone UTF-16 surrogates).
Text = Annotated[str, AfterValidator(_storable)]


# The street's calendar: days of the years 2000-2999 (a day outside the datetime range would
# overflow its bounds). Spelled out as patterns so the OpenAPI document states the same domain.
_DAY = r"2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DAY_PATTERN = f"^{_DAY}$"
# An instant on the street: ISO 8601 with a time zone (a bare number or a zone-less time is
# ambiguous, and was read as seconds since 1970).
TIME_PATTERN = (
    f"^{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,6}})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _spelled(pattern: str, what: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not compiled.match(value):
            raise ValueError(f"expected {what}")
        return value

    return BeforeValidator(check)


StreetDay = Annotated[
    date,
    _spelled(DAY_PATTERN, "a day YYYY-MM-DD of the years 2000-2999"),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
StreetTime = Annotated[
    datetime,
    _spelled(TIME_PATTERN, "an ISO 8601 time with a zone, in the years 2000-2999"),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIME_PATTERN}),
]


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    device_id: str
    kind: str
    # The columns as stored; `name` is the same in the contract's bilingual form.
    name_en: str
    name_zh: str
    x: float
    y: float
    availability: str
    availability_reason: str | None
    availability_changed_at: datetime | None
    last_seen: datetime | None
    last_seq: int | None
    telemetry: dict[str, Any]
    clock_skew_s: float | None = None
    clock_skewed: bool = False
    open_alarms: int = 0
    worst_severity: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> Bilingual:
        return Bilingual(self.name_en, self.name_zh)


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    event_id: str
    device_id: str
    kind: str
    channel: str
    type: str
    seq: int
    ts: datetime
    received_at: datetime
    correlation_id: str | None
    injected: bool
    run_id: str | None
    data: dict[str, Any]


class EventsPublic(BaseModel):
    data: list[EventPublic]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


class InjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: Identifier
    type: Identifier
    data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: Token | None = None
    run_id: Token | None = None


class InjectAccepted(BaseModel):
    event_id: str
    topic: str


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Identifier
    params: dict[str, Any] = Field(default_factory=dict)
    command_id: Token | None = Field(
        default=None, description="client-chosen id: resending the same id creates nothing new"
    )


class CommandPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    command_id: str
    device_id: str
    name: str
    params: dict[str, Any]
    status: str
    reason: str | None
    created_at: datetime = Field(description="street time (the street's clock)")
    updated_at: datetime = Field(description="street time of the latest status change")
    deliver_by: datetime | None = Field(
        default=None,
        description="wall-clock time: without a final answer by then it times out (the "
        "delivery timeout is on the wall clock, whatever the street's speed)",
    )


class DeadLetterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    topic: str
    reason: str
    received_at: datetime
    size: int
    sha256: str


class Health(BaseModel):
    status: str = Field(description="`ok`, or `degraded` with `reasons`")
    reasons: list[str] = Field(
        default_factory=list, description="why the status is `degraded` (empty when `ok`)"
    )
    broker_connected: bool
    database_ok: bool
    ingest_lag_s: float = Field(description="wall seconds")
    wall_now: datetime | None = Field(
        default=None, description="wall-clock time now (ingest times are wall time)"
    )
    last_commit_at: datetime | None = Field(
        default=None, description="wall-clock time of ingest's latest commit"
    )
    street_now: datetime | None = Field(
        default=None, description="the street's time now (GET /clock has the rest)"
    )
    broker_dropped: int = Field(
        description="the broker's drop counter (all clients, since it started)"
    )
    broker_drops: BrokerDrops
    queue_depth: int
    received: int
    stored: int
    duplicates: int
    dead_lettered: int
    dead_letter_reasons: dict[str, int]


class ClockChanged(BaseModel):
    """`POST /clock` applied: the clock as the backend follows it now, each simulator's ack."""

    clock: ClockView
    acks: list[ClockAck]
