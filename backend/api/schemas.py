"""Request and response models of the API (separate from tables and from the wire contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

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
