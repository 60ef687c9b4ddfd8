"""Events: filtered, cursor-paginated listing, lookup by id, and injection through the broker."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session, col, select
from starlette.convertors import Convertor, register_url_convertor

from backend.api.deps import CtxDep, Operator, SessionDep, check_time_range
from backend.api.schemas import (
    MAX_ROW_ID,
    EventPublic,
    EventsPublic,
    InjectAccepted,
    InjectRequest,
    StreetTime,
)
from backend.models import Device, Event
from backend.publisher import PublishError
from contracts.injection import injected_envelope
from contracts.topics import Channel, Topic
from contracts.validation import ContractError, dumps


class EventIdConvertor(Convertor[str]):
    """An event id in a path (contracts/envelope.py `Token`), but never a static sibling path
    of /events/: /events/inject is the injection route's, not an event's."""

    regex = r"(?!inject$)[A-Za-z0-9._:-]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("event_id", EventIdConvertor())

router = APIRouter(prefix="/events", tags=["events"])
csv_router = APIRouter(tags=["events"])


@dataclass
class EventFilter:
    """Query parameters shared by the JSON listing and the CSV export."""

    device_id: str | None = None
    kind: str | None = None
    type: str | None = None
    channel: Channel = Channel.EVENTS
    injected: bool | None = None
    run_id: str | None = None
    since: StreetTime | None = None  # device time, inclusive
    until: StreetTime | None = None  # device time, exclusive

    def __post_init__(self) -> None:
        check_time_range(self.since, self.until)

    def apply(self, query: Any) -> Any:
        query = query.where(Event.channel == self.channel.value)
        for column, value in (
            (Event.device_id, self.device_id),
            (Event.kind, self.kind),
            (Event.type, self.type),
            (Event.run_id, self.run_id),
        ):
            if value:
                query = query.where(column == value)
        if self.injected is not None:
            query = query.where(Event.injected == self.injected)
        if self.since:
            query = query.where(col(Event.ts) >= self.since)
        if self.until:
            query = query.where(col(Event.ts) < self.until)
        return query


FilterDep = Annotated[EventFilter, Depends()]


@router.get("", response_model=EventsPublic)
def list_events(
    session: SessionDep,
    where: FilterDep,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPublic:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    query = where.apply(select(Event))
    if cursor:
        query = query.where(col(Event.id) < cursor)
    rows = session.exec(query.order_by(col(Event.id).desc()).limit(limit)).all()
    data = [EventPublic.model_validate(r) for r in rows]
    return EventsPublic(data=data, next_cursor=data[-1].id if len(data) == limit else None)


CSV_COLUMNS = [
    "event_id",
    "device_id",
    "kind",
    "type",
    "seq",
    "ts",
    "received_at",
    "correlation_id",
    "injected",
    "run_id",
    "data",
]
CSV_MAX_ROWS = 100_000


@csv_router.get("/events.csv", response_class=StreamingResponse)
def export_events(ctx: CtxDep, where: FilterDep) -> StreamingResponse:
    """The same filters as GET /events, as CSV (newest first, at most 100,000 rows)."""

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        with Session(ctx.engine) as session:
            query = where.apply(select(Event)).order_by(col(Event.id).desc()).limit(CSV_MAX_ROWS)
            for i, ev in enumerate(session.exec(query)):
                writer.writerow(
                    [json.dumps(ev.data) if c == "data" else getattr(ev, c) for c in CSV_COLUMNS]
                )
                if i % 500 == 0:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={"Content-Disposition": "attachment; filename=events.csv"},
    )


@router.post(
    "/inject",
    response_model=InjectAccepted,
    status_code=202,
    responses={
        404: {"description": "no such device"},
        503: {"description": "the broker did not take the event"},
    },
)
def inject_event(
    body: InjectRequest, ctx: CtxDep, session: SessionDep, _scope: Operator
) -> InjectAccepted:
    """Validate against the contract and publish on the device's topic, flagged `injected`,
    stamped with the street's time (GET /clock). It is then ingested like any other event;
    poll GET /events/{event_id} to see it arrive."""
    device = session.get(Device, body.device_id)
    if device is None:
        raise HTTPException(404, "no such device")
    try:
        env = injected_envelope(
            device.kind,
            device.device_id,
            Channel.EVENTS,
            body.type,
            body.data,
            correlation_id=body.correlation_id,
            run_id=body.run_id,
            ts=ctx.clock.now(),  # street time: it happens on the street, now
        )
    except ContractError as exc:
        raise HTTPException(422, exc.reason) from None
    topic = Topic(device.kind, device.device_id, Channel.EVENTS)
    try:
        ctx.publisher.publish(topic, dumps(env))
    except PublishError as exc:
        raise HTTPException(503, f"broker did not take the event: {exc}") from None
    return InjectAccepted(event_id=env.event_id, topic=str(topic))


@router.get("/{event_id:event_id}", response_model=EventPublic)
def get_event(event_id: str, session: SessionDep) -> EventPublic:
    row = session.exec(select(Event).where(Event.event_id == event_id)).first()
    if row is None:
        raise HTTPException(404, "no such event (yet)")
    return EventPublic.model_validate(row)
