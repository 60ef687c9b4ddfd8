"""Alarms: list and inspect, acknowledge, clear and comment, with who and when."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as FastPath
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from backend.alarms import AlarmChange, AlarmNotFound, TransitionRefused, lifecycle
from backend.api.deps import CtxDep, Operator, SessionDep
from backend.api.schemas import MAX_ROW_ID, Text
from backend.live import alarm_message
from backend.models import Alarm, AlarmNote
from contracts.catalogue import rule_title
from contracts.text import Text as Bilingual
from contracts.vocabulary import SEVERITY_RANK, AlarmStatus

router = APIRouter(prefix="/alarms", tags=["alarms"])

# What the lifecycle refuses (backend/alarms/lifecycle.py), e.g. acknowledging a cleared alarm.
REFUSED: dict[int | str, dict[str, Any]] = {409: {"description": "not allowed in its status"}}

AlarmId = Annotated[int, FastPath(ge=1, le=MAX_ROW_ID)]


class AlarmNotePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    action: str
    author: str
    text: str | None
    at: datetime


class AlarmPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    rule: str
    device_id: str
    kind: str
    severity: str
    title: str
    status: str
    occurrences: int
    raised_at: datetime
    last_at: datetime
    updated_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    cleared_by: str | None
    cleared_at: datetime | None
    clear_reason: str | None
    details: dict[str, Any]
    notes: list[AlarmNotePublic] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title_text(self) -> Bilingual:
        """The title in both languages, from the alarm's rule in the catalogue. `title` is what
        was stored when the alarm was raised ("English · 中文"); a rule the catalogue does not
        declare (device-offline, a retired kind) keeps that stored title in both languages."""
        return rule_title(self.kind, self.rule) or Bilingual.same(self.title)


class AlarmAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(default="operator", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")
    comment: Text | None = Field(default=None, max_length=500)


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(default="operator", min_length=1, max_length=64, pattern=r"^[\w .@-]+$")
    text: Text = Field(min_length=1, max_length=500)


# "open" is active or acknowledged.
StatusFilter = Literal[
    "open", AlarmStatus.ACTIVE, AlarmStatus.ACKNOWLEDGED, AlarmStatus.CLEARED, "all"
]


@router.get("", response_model=list[AlarmPublic])
def list_alarms(
    session: SessionDep,
    status: StatusFilter = "open",
    device_id: str | None = None,
    kind: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlarmPublic]:
    """Open alarms (active and acknowledged) by default, most severe first."""
    query = select(Alarm)
    if status == "open":
        query = query.where(col(Alarm.status) != AlarmStatus.CLEARED)
    elif status != "all":
        query = query.where(Alarm.status == status)
    for column, value in (
        (Alarm.device_id, device_id),
        (Alarm.kind, kind),
        (Alarm.severity, severity),
        (Alarm.rule, rule),
    ):
        if value:
            query = query.where(column == value)
    rows = session.exec(query.order_by(col(Alarm.updated_at).desc()).limit(limit)).all()
    rows = sorted(
        rows, key=lambda a: (a.status == AlarmStatus.CLEARED, SEVERITY_RANK.get(a.severity, 9))
    )
    return [AlarmPublic.model_validate(r) for r in rows]


@contextlib.contextmanager
def _transition() -> Iterator[None]:
    """The lifecycle's refusals as HTTP answers."""
    try:
        yield
    except AlarmNotFound:
        raise HTTPException(404, "no such alarm") from None
    except TransitionRefused as exc:
        raise HTTPException(409, str(exc)) from None


def _load(session: SessionDep, alarm_id: int) -> AlarmPublic:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise HTTPException(404, "no such alarm")
    notes = session.exec(
        select(AlarmNote).where(AlarmNote.alarm_id == alarm_id).order_by(col(AlarmNote.id))
    ).all()
    public = AlarmPublic.model_validate(alarm)
    public.notes = [AlarmNotePublic.model_validate(n) for n in notes]
    return public


@router.get("/{alarm_id}", response_model=AlarmPublic)
def get_alarm(alarm_id: AlarmId, session: SessionDep) -> AlarmPublic:
    return _load(session, alarm_id)


class _OperatorStep(Protocol):
    """lifecycle.acknowledge and lifecycle.clear_by_operator."""

    def __call__(
        self,
        conn: Connection,
        alarm_id: int,
        *,
        by: str,
        now: datetime,
        comment: str | None = None,
    ) -> AlarmChange: ...


def _operator_step(
    step: _OperatorStep, alarm_id: int, body: AlarmAction, ctx: CtxDep, session: SessionDep
) -> AlarmPublic:
    """Apply an operator's transition, tell the live feed, answer with the alarm as it is now."""
    with _transition(), ctx.engine.begin() as conn:
        change = step(conn, alarm_id, by=body.by, now=ctx.clock.now(), comment=body.comment)
    ctx.live.publish(alarm_message(change))
    session.expire_all()
    return _load(session, alarm_id)


@router.post("/{alarm_id}/acknowledge", response_model=AlarmPublic, responses=REFUSED)
def acknowledge(
    alarm_id: AlarmId, body: AlarmAction, ctx: CtxDep, session: SessionDep, _scope: Operator
) -> AlarmPublic:
    return _operator_step(lifecycle.acknowledge, alarm_id, body, ctx, session)


@router.post("/{alarm_id}/clear", response_model=AlarmPublic, responses=REFUSED)
def clear(
    alarm_id: AlarmId, body: AlarmAction, ctx: CtxDep, session: SessionDep, _scope: Operator
) -> AlarmPublic:
    return _operator_step(lifecycle.clear_by_operator, alarm_id, body, ctx, session)


@router.post("/{alarm_id}/comments", response_model=AlarmPublic, status_code=201, responses=REFUSED)
def comment(
    alarm_id: AlarmId, body: CommentBody, ctx: CtxDep, session: SessionDep, _scope: Operator
) -> AlarmPublic:
    with _transition(), ctx.engine.begin() as conn:
        lifecycle.comment(conn, alarm_id, by=body.by, text=body.text, now=ctx.clock.now())
    session.expire_all()
    return _load(session, alarm_id)
