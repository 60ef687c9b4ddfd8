"""Events: filtered, cursor-paginated listing, lookup by id, and injection through the broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlmodel import col, select

from backend.api.deps import CtxDep, Operator, SessionDep
from backend.api.schemas import EventPublic, EventsPublic, InjectAccepted, InjectRequest
from backend.models import Device, Event
from backend.publisher import PublishError
from contracts.catalogue import get_kind
from contracts.envelope import Envelope, new_id
from contracts.topics import Channel, Topic
from contracts.validation import ContractError, dumps, validate_data

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=EventsPublic)
def list_events(
    session: SessionDep,
    device_id: str | None = None,
    kind: str | None = None,
    type: str | None = None,
    channel: Channel = Channel.EVENTS,
    injected: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPublic:
    """Newest first. `since`/`until` filter on the device timestamp."""
    query = select(Event).where(Event.channel == channel.value)
    if device_id:
        query = query.where(Event.device_id == device_id)
    if kind:
        query = query.where(Event.kind == kind)
    if type:
        query = query.where(Event.type == type)
    if injected is not None:
        query = query.where(Event.injected == injected)
    if since:
        query = query.where(col(Event.ts) >= since)
    if until:
        query = query.where(col(Event.ts) < until)
    if cursor:
        query = query.where(col(Event.id) < cursor)
    rows = session.exec(query.order_by(col(Event.id).desc()).limit(limit)).all()
    data = [EventPublic.model_validate(r) for r in rows]
    return EventsPublic(data=data, next_cursor=data[-1].id if len(data) == limit else None)


@router.get("/{event_id}", response_model=EventPublic)
def get_event(event_id: str, session: SessionDep) -> EventPublic:
    row = session.exec(select(Event).where(Event.event_id == event_id)).first()
    if row is None:
        raise HTTPException(404, "no such event (yet)")
    return EventPublic.model_validate(row)


@router.post("/inject", response_model=InjectAccepted, status_code=202)
def inject_event(
    body: InjectRequest, ctx: CtxDep, session: SessionDep, _scope: Operator
) -> InjectAccepted:
    """Validate against the contract and publish on the device's topic, flagged `injected`.
    It is then ingested like any other event; poll GET /events/{event_id} to see it arrive."""
    device = session.get(Device, body.device_id)
    if device is None:
        raise HTTPException(404, "no such device")
    spec = get_kind(device.kind)
    try:
        data = validate_data(spec, Channel.EVENTS, body.type, body.data)
    except ContractError as exc:
        raise HTTPException(422, exc.reason) from None
    env = Envelope(
        event_id=new_id(),
        device_id=device.device_id,
        kind=device.kind,
        type=body.type,
        seq=0,
        ts=datetime.now(UTC),
        correlation_id=body.correlation_id,
        injected=True,
        run_id=body.run_id,
        data=data.model_dump(mode="json", exclude_none=True),
    )
    topic = Topic(device.kind, device.device_id, Channel.EVENTS)
    try:
        ctx.publisher.publish(topic, dumps(env))
    except PublishError as exc:
        raise HTTPException(503, f"broker did not take the event: {exc}") from None
    return InjectAccepted(event_id=env.event_id, topic=str(topic))
