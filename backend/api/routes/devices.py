"""Devices: the registry with availability and twin state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from backend.api.deps import SessionDep, check_time_range
from backend.api.schemas import DevicePublic, DevicesPublic, StreetTime
from backend.models import Alarm, Device, Event, table
from contracts.vocabulary import SEVERITY_RANK, AlarmStatus

router = APIRouter(prefix="/devices", tags=["devices"])


def _open_alarms(session: SessionDep, device_id: str | None = None) -> dict[str, list[str]]:
    query = select(Alarm.device_id, Alarm.severity).where(col(Alarm.status) != AlarmStatus.CLEARED)
    if device_id:
        query = query.where(Alarm.device_id == device_id)
    out: dict[str, list[str]] = {}
    for dev, severity in session.exec(query).all():
        out.setdefault(dev, []).append(severity)
    return out


def _public(row: Device, alarms: dict[str, list[str]]) -> DevicePublic:
    public = DevicePublic.model_validate(row)
    public.open_alarms = len(alarms.get(row.device_id, []))
    severities = alarms.get(row.device_id, [])
    public.worst_severity = min(severities, key=lambda s: SEVERITY_RANK.get(s, 9), default=None)
    return public


@router.get("", response_model=DevicesPublic)
def list_devices(
    session: SessionDep,
    kind: str | None = None,
    availability: str | None = None,
    alarm: Annotated[
        bool | None, Query(description="true: only devices with an open alarm; false: none")
    ] = None,
) -> DevicesPublic:
    query = select(Device).order_by(col(Device.device_id))
    if kind:
        query = query.where(Device.kind == kind)
    if availability:
        query = query.where(Device.availability == availability)
    alarms = _open_alarms(session)
    rows = [
        r for r in session.exec(query).all() if alarm is None or (r.device_id in alarms) == alarm
    ]
    return DevicesPublic(data=[_public(r, alarms) for r in rows], count=len(rows))


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, session: SessionDep) -> DevicePublic:
    row = session.get(Device, device_id)
    if row is None:
        raise HTTPException(404, "no such device")
    return _public(row, _open_alarms(session, device_id))


def parse_slot(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


class TelemetryPoint(BaseModel):
    bucket: datetime
    avg: float | None
    min: float | None
    max: float | None
    samples: int


@router.get("/{device_id}/telemetry", response_model=list[TelemetryPoint])
def telemetry_series(
    device_id: str,
    session: SessionDep,
    field: Annotated[str, Query(pattern=r"^[a-z_][a-z0-9_]{0,63}$")],
    bucket: Literal["minute", "hour"] = "minute",
    since: StreetTime | None = None,
    until: StreetTime | None = None,
) -> list[TelemetryPoint]:
    """Aggregates of one numeric telemetry field per minute or hour (device time), so the
    console can chart a day without pulling raw rows."""
    check_time_range(since, until)
    if session.get(Device, device_id) is None:
        raise HTTPException(404, "no such device")
    ev: Any = table(Event).c
    value = ev.data[field].as_float()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        slot: Any = func.date_trunc(bucket, ev.ts)
    else:
        fmt = "%Y-%m-%d %H:%M:00" if bucket == "minute" else "%Y-%m-%d %H:00:00"
        slot = func.strftime(fmt, ev.ts)
    query = (
        sa_select(slot, func.avg(value), func.min(value), func.max(value), func.count())
        .where(ev.device_id == device_id, ev.channel == "telemetry")
        .group_by(slot)
        .order_by(slot)
    )
    if since:
        query = query.where(ev.ts >= since)
    if until:
        query = query.where(ev.ts < until)
    points = []
    rows: Any = session.connection().execute(query).all()
    for slot_value, avg, lo, hi, n in rows:
        # PostgreSQL returns a timestamp, SQLite the formatted text.
        when = (
            slot_value if isinstance(slot_value, datetime) else datetime.fromisoformat(slot_value)
        )
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        points.append(TelemetryPoint(bucket=when, avg=avg, min=lo, max=hi, samples=n))
    return points
