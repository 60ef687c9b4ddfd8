"""The drill engine's street port inside the backend: the API routes' own queries and command
path, called directly in the run's thread (no HTTP, no API key: the backend acts as itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Response
from pydantic import ValidationError
from sqlmodel import Session

from backend.api.context import AppContext
from backend.api.routes import alarms, clock, commands, devices, events
from backend.api.schemas import CommandPublic, CommandRequest
from contracts.clock import ClockAction, ClockView
from contracts.topics import Channel
from scenarios.port import PAGE, AlarmSeen, CommandSeen, EventQuery, EventsPage
from scenarios.wire import ScenarioError


@contextmanager
def _refused(method: str, path: str) -> Iterator[None]:
    """A route's refusal, worded as an API client would see it."""
    try:
        yield
    except HTTPException as exc:
        body = json.dumps({"detail": exc.detail}, ensure_ascii=False, separators=(",", ":"))
        raise ScenarioError(f"{method} {path} → {exc.status_code}: {body[:200]}") from None


def _command(row: CommandPublic) -> CommandSeen:
    return CommandSeen(row.command_id, row.status, row.reason)


class BackendStreet:
    """What the API shows an operate key, read and written in this process."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _session(self) -> Session:
        return Session(self.ctx.engine)

    def alarms(self, device_id: str, rule: str) -> list[AlarmSeen]:
        with self._session() as session, _refused("GET", "/alarms"):
            rows = alarms.list_alarms(
                session,
                status="all",
                device_id=device_id,
                kind=None,
                severity=None,
                rule=rule,
                limit=1000,
            )
        return [
            AlarmSeen(a.id, a.status, a.occurrences, a.clear_reason) for a in rows if a.rule == rule
        ]

    def events_page(self, query: EventQuery, cursor: int | None) -> EventsPage:
        where = events.EventFilter(
            device_id=query.device_id,
            kind=query.kind,
            type=query.type,
            channel=Channel(query.channel or Channel.EVENTS.value),
            injected=query.injected,
            run_id=query.run_id,
            since=query.since,
        )
        with self._session() as session, _refused("GET", "/events"):
            page = events.list_events(session, where, cursor=cursor, limit=PAGE)
        return EventsPage([e.model_dump(mode="json") for e in page.data], page.next_cursor)

    def device(self, device_id: str) -> dict[str, Any]:
        with self._session() as session, _refused("GET", f"/devices/{device_id}"):
            return devices.get_device(device_id, session).model_dump(mode="json")

    def devices(self, kind: str | None) -> list[dict[str, Any]]:
        with self._session() as session, _refused("GET", "/devices"):
            page = devices.list_devices(session, kind=kind, availability=None, alarm=None)
        return [d.model_dump(mode="json") for d in page.data]

    def send_command(self, device_id: str, name: str, params: dict[str, Any]) -> CommandSeen:
        path = f"/devices/{device_id}/commands"
        try:
            # Through JSON, as a request body would be: the route sees what a client can send.
            body = CommandRequest.model_validate(
                {"name": name, "params": json.loads(json.dumps(params))}
            )
        except ValidationError as exc:
            fields = ",".join(sorted({".".join(map(str, e["loc"])) for e in exc.errors()}))
            raise ScenarioError(f"POST {path} → 422: invalid {fields}") from None
        with self._session() as session, _refused("POST", path):
            row = commands.send_command(device_id, body, self.ctx, session, Response(), "operate")
        return _command(row)

    def command(self, command_id: str) -> CommandSeen:
        with self._session() as session, _refused("GET", f"/commands/{command_id}"):
            return _command(commands.get_command(command_id, session))

    def clock(self) -> ClockView:
        return clock.get_clock(self.ctx)

    def set_clock(self, action: ClockAction) -> ClockView:
        try:
            return clock.set_clock(action, self.ctx, "operate").clock
        except HTTPException as exc:  # the operator's reason: no simulator, at max, ...
            raise ScenarioError(
                f"the street's clock refused {action.action} ({exc.status_code}): {exc.detail}"
            ) from None

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own database session."""
