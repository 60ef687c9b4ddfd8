"""Statistics for the console: headline figures per kind and hourly activity, from aggregates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from backend.api.deps import CtxDep, SessionDep
from backend.api.schemas import StreetDay
from backend.models import Alarm, Device, StatHourly, table
from contracts.catalogue import load_builtin_kinds
from contracts.clock import street_day
from contracts.text import Text
from contracts.vocabulary import STREET_TZ, AlarmStatus, Availability

router = APIRouter(tags=["stats"])


class Figure(BaseModel):
    kind: str
    name: str
    label_en: str
    label_zh: str
    label: Text  # the same label in the contract's bilingual form
    value: float


class HourCount(BaseModel):
    kind: str
    stat: str
    hour: datetime
    count: int


class Stats(BaseModel):
    day: date
    devices_total: int
    devices_online: int
    open_alarms: int
    alarms_by_severity: dict[str, int]
    figures: list[Figure]
    hourly: list[HourCount]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), STREET_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


@router.get("/stats", response_model=Stats)
def stats(
    ctx: CtxDep,
    session: SessionDep,
    day: StreetDay | None = None,
) -> Stats:
    """Figures for one day on the street (Chongqing time, default the street's today: its
    clock's day, which a simulator may run ahead of the wall calendar)."""
    day = day or street_day(ctx.clock.now())
    start, end = day_bounds(day)
    devices = session.exec(select(Device)).all()
    open_alarms = session.exec(
        select(Alarm.severity, func.count())
        .where(col(Alarm.status) != AlarmStatus.CLEARED)
        .group_by(Alarm.severity)
    ).all()
    by_severity = {sev: int(n) for sev, n in open_alarms}
    st: Any = table(StatHourly).c
    rows: Any = (
        session.connection()
        .execute(
            sa_select(st.kind, st.stat, st.hour, func.sum(st.count))
            .where(st.hour >= start, st.hour < end)
            .group_by(st.kind, st.stat, st.hour)
            .order_by(st.hour)
        )
        .all()
    )
    hourly = [HourCount(kind=k, stat=s, hour=h, count=int(n or 0)) for k, s, h, n in rows]
    totals: dict[tuple[str, str], int] = {}
    for row in hourly:
        totals[(row.kind, row.stat)] = totals.get((row.kind, row.stat), 0) + row.count
    figures: list[Figure] = []
    for kind, spec in sorted(load_builtin_kinds().items()):
        for stat in spec.stats:
            value: float
            if stat.telemetry_field:
                value = sum(
                    _number(d.telemetry.get(stat.telemetry_field))
                    for d in devices
                    if d.kind == kind
                )
            else:
                value = totals.get((kind, stat.name), 0)
            figures.append(
                Figure(
                    kind=kind,
                    name=stat.name,
                    label_en=stat.label.en,
                    label_zh=stat.label.zh,
                    label=stat.label,
                    value=value,
                )
            )
    return Stats(
        day=day,
        devices_total=len(devices),
        devices_online=sum(d.availability == Availability.ONLINE for d in devices),
        open_alarms=sum(by_severity.values()),
        alarms_by_severity=by_severity,
        figures=figures,
        hourly=hourly,
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
