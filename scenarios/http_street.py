"""The street port over the backend's REST API (adapters.api_client), for `python -m scenarios`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from adapters.api_client import DEFAULT_TIMEOUT_S, ApiClient, ApiError, ApiRefused
from adapters.api_types import CommandRow
from contracts.clock import ClockAction, ClockView
from scenarios.port import PAGE, AlarmSeen, CommandSeen, EventQuery, EventsPage
from scenarios.wire import ScenarioError

T = TypeVar("T")

# `POST /clock` waits for the simulators' answers: give it longer than a read.
CLOCK_TIMEOUT_S = 30.0


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiError as exc:  # unreachable, refused or not JSON: the operator's to fix
        raise ScenarioError(str(exc)) from None


def _command(row: CommandRow) -> CommandSeen:
    return CommandSeen(row["command_id"], row["status"], row.get("reason"))


class HttpStreet:
    """What any API client with an operate key sees."""

    def __init__(self, url: str, key: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.api = ApiClient(url, key, timeout=timeout)

    def alarms(self, device_id: str, rule: str) -> list[AlarmSeen]:
        rows = _call(
            lambda: self.api.alarms(status="all", device_id=device_id, rule=rule, limit=1000)
        )
        return [
            AlarmSeen(a["id"], a["status"], a["occurrences"], a.get("clear_reason"))
            for a in rows
            if a["rule"] == rule
        ]

    def events_page(self, query: EventQuery, cursor: int | None) -> EventsPage:
        page = _call(
            lambda: self.api.events(
                device_id=query.device_id,
                kind=query.kind,
                type=query.type,
                channel=query.channel,
                injected=query.injected,
                run_id=query.run_id,
                since=query.since,
                cursor=cursor,
                limit=PAGE,
            )
        )
        return EventsPage(page["data"], page["next_cursor"])

    def device(self, device_id: str) -> dict[str, Any]:
        return _call(lambda: self.api.device(device_id))

    def devices(self, kind: str | None) -> list[dict[str, Any]]:
        return _call(lambda: self.api.devices(kind=kind))["data"]

    def send_command(self, device_id: str, name: str, params: dict[str, Any]) -> CommandSeen:
        return _command(_call(lambda: self.api.send_command(device_id, name, params)))

    def command(self, command_id: str) -> CommandSeen:
        return _command(_call(lambda: self.api.command(command_id)))

    def clock(self) -> ClockView:
        try:
            body = self.api.get("/clock")
        except ApiRefused as exc:
            if exc.status != 404:
                raise ScenarioError(str(exc)) from None
            # A backend from before the street's clock (no GET /clock): it runs on wall time.
            return ClockView.of([])
        except ApiError as exc:
            raise ScenarioError(str(exc)) from None
        return ClockView.model_validate(body)

    def set_clock(self, action: ClockAction) -> ClockView:
        body = action.model_dump(mode="json", exclude_none=True)
        try:
            self.api.request("POST", "/clock", body=body, timeout=CLOCK_TIMEOUT_S)
        except ApiRefused as exc:  # the reason is the operator's: no simulator, at max, ...
            raise ScenarioError(
                f"the street's clock refused {action.action} ({exc.status}): {exc.detail}"
            ) from None
        except ApiError as exc:
            raise ScenarioError(str(exc)) from None
        # Read back rather than rely on the answer's shape: the view is what a run follows.
        return self.clock()

    def close(self) -> None:
        self.api.close()
