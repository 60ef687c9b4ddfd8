"""The engine's port to the street's backend: what a run reads (alarms, events, twins, commands,
the street's clock) and what it writes there (commands, clock actions). Injections go through
the broker instead (scenarios.wire). Implementations raise ScenarioError for what the operator
must fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from contracts.clock import ClockAction, ClockView


@dataclass(frozen=True)
class EventQuery:
    """The filters of `GET /events` that expectations use."""

    device_id: str | None = None
    kind: str | None = None
    type: str | None = None
    channel: str | None = None  # None: events
    injected: bool | None = None
    run_id: str | None = None
    since: datetime | None = None  # device time, inclusive


@dataclass(frozen=True)
class EventsPage:
    """Stored envelopes as `GET /events` shows them, newest first; `next_cursor` is None on the
    last page."""

    rows: list[dict[str, Any]]
    next_cursor: int | None


@dataclass(frozen=True)
class AlarmSeen:
    id: int
    status: str  # active, acknowledged or cleared
    occurrences: int
    clear_reason: str | None = None


@dataclass(frozen=True)
class CommandSeen:
    command_id: str
    status: str
    reason: str | None = None


class StreetPort(Protocol):
    """The backend as a run sees it (what an API client with an operate key sees)."""

    def alarms(self, device_id: str, rule: str) -> list[AlarmSeen]:
        """The alarms of `rule` on the device in every status (the 1,000 changed last)."""
        ...

    def events_page(self, query: EventQuery, cursor: int | None) -> EventsPage:
        """One page of up to 1,000 matching envelopes, from `cursor` (None: the newest)."""
        ...

    def device(self, device_id: str) -> dict[str, Any]:
        """The device's registry entry and twin, as `GET /devices/{device_id}` shows it."""
        ...

    def devices(self, kind: str | None) -> list[dict[str, Any]]:
        """Every device (of `kind`), as `GET /devices` shows them."""
        ...

    def send_command(self, device_id: str, name: str, params: dict[str, Any]) -> CommandSeen: ...

    def command(self, command_id: str) -> CommandSeen: ...

    def clock(self) -> ClockView:
        """The street's clock, as `GET /clock` shows it (source "wall": no simulator)."""
        ...

    def set_clock(self, action: ClockAction) -> ClockView:
        """`POST /clock`: the simulators applied `action`; the clock afterwards. A refusal (no
        simulator, at "max", ...) raises ScenarioError with the reason."""
        ...

    def close(self) -> None: ...


PAGE = 1000  # events per page


def event_rows(street: StreetPort, query: EventQuery, cap: int) -> list[dict[str, Any]]:
    """Matching envelopes, newest first: every one, or whole pages until `cap` is reached."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = street.events_page(query, cursor)
        rows += page.rows
        cursor = page.next_cursor
        if cursor is None or len(rows) >= cap:
            return rows


def count_events(street: StreetPort, query: EventQuery, cap: int) -> int:
    """How many envelopes match, counted exactly up to `cap` (past it, at least cap + 1)."""
    n, cursor = 0, None
    while True:
        page = street.events_page(query, cursor)
        n += len(page.rows)
        cursor = page.next_cursor
        if cursor is None or n > cap:
            return n
