"""Database tables (SQLModel). Wire payloads stay plain pydantic models in contracts/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, Table
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from contracts.vocabulary import AlarmStatus, Availability, CommandStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC on every database: SQLite would otherwise hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use UTC-aware datetimes")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


class Device(SQLModel, table=True):
    """A provisioned device and its twin: availability, last traffic, latest telemetry."""

    device_id: str = Field(primary_key=True)
    kind: str = Field(index=True)
    name_en: str
    name_zh: str
    x: float
    y: float
    availability: str = Availability.UNKNOWN  # contracts.vocabulary.Availability
    availability_reason: str | None = None  # connected | clean-shutdown | last-will
    availability_changed_at: datetime | None = _ts(nullable=True)
    last_seen: datetime | None = _ts(nullable=True)  # street time at receipt
    last_seq: int | None = None
    telemetry: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Device time minus street time at receipt, from its latest judged message; `clock_skewed`
    # once beyond LIJIA_CLOCK_SKEW_FLAG_S (backend/ingest/skew.py; a flag, not a refusal).
    clock_skew_s: float | None = None
    clock_skewed: bool = False


class Event(SQLModel, table=True):
    """Every envelope received (events, telemetry, command results), stored once by event_id."""

    __table_args__ = (
        Index("ix_event_device_id_id", "device_id", "id"),
        # Sequence-gap analysis and replay checks look up each device's messages by seq.
        Index("ix_event_device_id_seq", "device_id", "seq"),
        # The listing filtered by type, newest first (migration 0004).
        Index("ix_event_type_id", "type", "id"),
        # Burst rules: one device's events of one type in a window of device time (0004).
        Index("ix_event_device_id_type_ts", "device_id", "type", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    device_id: str
    kind: str = Field(index=True)
    channel: str
    type: str
    seq: int
    boot: str | None = None
    ts: datetime = _ts(nullable=False)
    received_at: datetime = _ts(nullable=False)
    correlation_id: str | None = None
    injected: bool = False
    run_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class DeadLetter(SQLModel, table=True):
    """A message that broke the contract: kept with the reason, acknowledged, never retried."""

    id: int | None = Field(default=None, primary_key=True)
    topic: str
    reason: str
    received_at: datetime = _ts(nullable=False)
    size: int
    # A digest, not the bytes: refused payloads are exactly where forbidden personal fields
    # (names, images) would land, so the content is not kept.
    sha256: str


class Alarm(SQLModel, table=True):
    """One alarm: active → acknowledged → cleared (moved on only by backend/alarms/lifecycle.py).
    At most one open alarm per rule and device: `open_key` is set while open and NULL once
    cleared, under a unique constraint (NULLs never collide), which also holds when several
    backend replicas race."""

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(index=True)
    device_id: str = Field(index=True)
    kind: str
    severity: str
    title: str
    status: str = AlarmStatus.ACTIVE  # contracts.vocabulary.AlarmStatus
    open_key: str | None = Field(default=None, unique=True)
    occurrences: int = 1
    raised_at: datetime = _ts(nullable=False)
    last_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = _ts(nullable=True)
    cleared_by: str | None = None
    cleared_at: datetime | None = _ts(nullable=True)
    clear_reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class AlarmNote(SQLModel, table=True):
    """The history of an alarm: who raised, acknowledged, cleared or commented, and when."""

    __tablename__ = "alarm_note"

    id: int | None = Field(default=None, primary_key=True)
    alarm_id: int = Field(index=True, foreign_key="alarm.id")
    action: str  # contracts.vocabulary.NoteAction
    author: str
    text: str | None = None
    at: datetime = _ts(nullable=False)


class RuleState(SQLModel, table=True):
    """What a rule remembers between messages: since when a telemetry condition holds, or an
    open deadline (key = e.g. a request id)."""

    __tablename__ = "rule_state"

    device_id: str = Field(primary_key=True)
    rule: str = Field(primary_key=True)
    key: str = Field(default="", primary_key=True)
    since: datetime = _ts(nullable=False)
    due_at: datetime | None = _ts(nullable=True)


class StatHourly(SQLModel, table=True):
    """Headline counts per device, figure and hour: what the console charts; it survives the
    retention purge of personal events."""

    __tablename__ = "stat_hourly"
    # `/stats` reads one day (migration 0004).
    __table_args__ = (Index("ix_stat_hourly_hour_kind_stat", "hour", "kind", "stat"),)

    device_id: str = Field(primary_key=True)
    stat: str = Field(primary_key=True)
    hour: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    kind: str = Field(index=True)
    count: int = 0


class CommandRecord(SQLModel, table=True):
    """An operator command and its progress: pending → sent → accepted → succeeded / ...
    (moved on only by backend/commands.py)."""

    __tablename__ = "command"

    command_id: str = Field(primary_key=True)
    device_id: str = Field(index=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = CommandStatus.PENDING  # contracts.vocabulary.CommandStatus
    reason: str | None = None
    # Street time (backend/street_clock.py): the timeline.
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    # Wall time: the delivery timeout (machinery, not a fact of the street; migration 0005).
    deliver_by: datetime | None = _ts(nullable=True)


class BrokerObservation(SQLModel, table=True):
    """What ingest last saw of the broker's drop counter (Mosquitto's $SYS, cumulative since the
    broker started): the baseline that lets a restarted backend still report drops that happened
    while it was away (backend/ingest/drops.py; migration 0006). One row per broker address."""

    __tablename__ = "broker_observation"

    broker: str = Field(primary_key=True)
    dropped: int
    uptime_s: int
    # Wall time (the machinery): when the counter and uptime above were seen.
    observed_at: datetime = _ts(nullable=False)


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for bulk statements (SQLModel does not type `__table__`)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]
