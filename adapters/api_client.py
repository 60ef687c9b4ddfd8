"""The typed REST client of the backend's API (httpx): key header, time-outs, one error type.

Errors, all `ApiError`:
- `ApiUnreachable`: no answer (connection refused, time-out, broken response);
- `ApiRefused`: an HTTP status of 400 or more, with `status` and the backend's `detail`;
- `ApiNotJson`: an answer that should be JSON and is not.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, cast

import httpx

from adapters.api_types import (
    AlarmRow,
    AlarmWithNotes,
    ClockChanged,
    CommandRow,
    DeadLetter,
    DevicesPage,
    EventsPage,
    InjectAccepted,
    ShippedScenario,
    TelemetryPoint,
)
from contracts.clock import ClockAction, ClockView

KEY_HEADER = "X-API-Key"
DEFAULT_TIMEOUT_S = 10.0
EXPORT_TIMEOUT_S = 60.0  # a CSV export may be large


class ApiError(RuntimeError):
    """The API could not be used; `url` is the backend's base URL."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class ApiUnreachable(ApiError):
    """No answer from the backend."""


class ApiRefused(ApiError):
    """The backend answered with an error status."""

    def __init__(self, message: str, url: str, status: int, detail: str) -> None:
        super().__init__(message, url)
        self.status = status
        self.detail = detail


class ApiNotJson(ApiError):
    """The backend's answer is not JSON."""


def error_detail(resp: httpx.Response) -> str:
    """The backend's reason in a line: FastAPI's `detail` is a string or a list of field errors."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return resp.text[:200]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}"
            if isinstance(e, dict)
            else str(e)
            for e in detail
        )
    return str(detail)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters as the API reads them: None left out, booleans and times spelled out."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = str(v).lower()
        elif isinstance(v, datetime):
            v = v.isoformat()
        out[k] = v
    return out


class ApiClient:
    """One connection pool to one backend, with one API key (or none: only /health and /metrics,
    unless the backend opens its reads with LIJIA_OPEN_READS)."""

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/")
        headers = {KEY_HEADER: key} if key else {}
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    # -- any resource ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; ApiUnreachable or ApiRefused instead of an error answer."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            resp = self.http.request(method, path, params=_params(params or {}), json=body, **extra)
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"API {self.url} unreachable: {exc}", self.url) from None
        if resp.status_code >= 400:
            raise ApiRefused(
                f"{method} {path} → {resp.status_code}: {resp.text[:200]}",
                self.url,
                resp.status_code,
                error_detail(resp),
            )
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise ApiNotJson(f"API {self.url} did not answer JSON", self.url) from None

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self.request("GET", path, params=params))

    def get_text(self, path: str, timeout: float | None = None, **params: Any) -> str:
        """A non-JSON resource, e.g. /events.csv."""
        return self.request("GET", path, params=params, timeout=timeout).text

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self.request("POST", path, body=body))

    # -- devices -----------------------------------------------------------------------------
    def devices(
        self,
        *,
        kind: str | None = None,
        availability: str | None = None,
        alarm: bool | None = None,
    ) -> DevicesPage:
        """GET /devices (alarm: True, only devices with an open alarm; False, none)."""
        page = self.get("/devices", kind=kind, availability=availability, alarm=alarm)
        return cast(DevicesPage, page)

    def device(self, device_id: str) -> dict[str, Any]:
        """A device's registry entry and twin (GET /devices/{device_id})."""
        return cast(dict[str, Any], self.get(f"/devices/{device_id}"))

    def telemetry(
        self,
        device_id: str,
        *,
        field: str,
        bucket: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[TelemetryPoint]:
        """GET /devices/{device_id}/telemetry: one numeric field by minute or hour."""
        points = self.get(
            f"/devices/{device_id}/telemetry", field=field, bucket=bucket, since=since, until=until
        )
        return cast(list[TelemetryPoint], points)

    # -- events ------------------------------------------------------------------------------
    def events(
        self,
        *,
        device_id: str | None = None,
        kind: str | None = None,
        type: str | None = None,
        channel: str | None = None,
        injected: bool | None = None,
        run_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: int | None = None,
        limit: int = 100,
    ) -> EventsPage:
        """One page of GET /events, newest first; pass `next_cursor` back as `cursor`."""
        page = self.get(
            "/events",
            device_id=device_id,
            kind=kind,
            type=type,
            channel=channel,
            injected=injected,
            run_id=run_id,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
        return cast(EventsPage, page)

    def events_csv(
        self,
        *,
        device_id: str | None = None,
        kind: str | None = None,
        type: str | None = None,
        injected: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        timeout: float = EXPORT_TIMEOUT_S,
    ) -> str:
        """GET /events.csv: every event the filters select, as CSV (a longer time-out)."""
        return self.get_text(
            "/events.csv",
            timeout=timeout,
            device_id=device_id,
            kind=kind,
            type=type,
            injected=injected,
            since=since,
            until=until,
        )

    def event(self, event_id: str) -> dict[str, Any]:
        """One stored event (GET /events/{event_id}); ApiRefused 404 until ingest stored it."""
        return cast(dict[str, Any], self.get(f"/events/{event_id}"))

    def inject(
        self,
        device_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        correlation_id: str | None = None,
        run_id: str | None = None,
    ) -> InjectAccepted:
        """POST /events/inject: the backend publishes the event as the device (an operate key)."""
        body: dict[str, Any] = {"device_id": device_id, "type": event_type, "data": data}
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        if run_id is not None:
            body["run_id"] = run_id
        return self.inject_body(body)

    def inject_body(self, body: dict[str, Any]) -> InjectAccepted:
        """POST /events/inject with a body as given (the console's raw JSON; the API checks it)."""
        return cast(InjectAccepted, self.post("/events/inject", body))

    # -- alarms ------------------------------------------------------------------------------
    def alarms(
        self,
        *,
        status: str | None = None,
        device_id: str | None = None,
        rule: str | None = None,
        kind: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
    ) -> list[AlarmRow]:
        """GET /alarms (status: open, active, acknowledged, cleared or all; the API's defaults
        are open and 200)."""
        rows = self.get(
            "/alarms",
            status=status,
            device_id=device_id,
            rule=rule,
            kind=kind,
            severity=severity,
            limit=limit,
        )
        return cast(list[AlarmRow], rows)

    def alarm(self, alarm_id: int) -> AlarmWithNotes:
        return cast(AlarmWithNotes, self.get(f"/alarms/{alarm_id}"))

    def acknowledge_alarm(self, alarm_id: int, *, by: str, comment: str | None) -> AlarmRow:
        """POST /alarms/{alarm_id}/acknowledge (an operate key)."""
        body = {"by": by, "comment": comment}
        return cast(AlarmRow, self.post(f"/alarms/{alarm_id}/acknowledge", body))

    def clear_alarm(self, alarm_id: int, *, by: str, comment: str | None) -> AlarmRow:
        """POST /alarms/{alarm_id}/clear (an operate key)."""
        body = {"by": by, "comment": comment}
        return cast(AlarmRow, self.post(f"/alarms/{alarm_id}/clear", body))

    def comment_alarm(self, alarm_id: int, *, by: str, text: str) -> AlarmWithNotes:
        """POST /alarms/{alarm_id}/comments (an operate key)."""
        body = {"by": by, "text": text}
        return cast(AlarmWithNotes, self.post(f"/alarms/{alarm_id}/comments", body))

    # -- commands ----------------------------------------------------------------------------
    def commands(self, *, device_id: str | None = None) -> list[CommandRow]:
        """GET /commands: the latest 200, newest first."""
        return cast(list[CommandRow], self.get("/commands", device_id=device_id))

    def command(self, command_id: str) -> CommandRow:
        return cast(CommandRow, self.get(f"/commands/{command_id}"))

    def send_command(
        self,
        device_id: str,
        name: str,
        params: dict[str, Any],
        command_id: str | None = None,
    ) -> CommandRow:
        """POST /devices/{device_id}/commands (an operate key)."""
        body: dict[str, Any] = {"name": name, "params": params}
        if command_id is not None:
            body["command_id"] = command_id
        return cast(CommandRow, self.post(f"/devices/{device_id}/commands", body))

    # -- the street's clock --------------------------------------------------------------------
    def clock(self) -> ClockView:
        """GET /clock: the street's time (a simulator's clock; wall time when none runs)."""
        return ClockView.model_validate(self.get("/clock"))

    def set_clock(self, action: ClockAction) -> ClockChanged:
        """POST /clock (an operate key): pause, resume, speed or jump, once every running
        simulator has applied it. ApiRefused with status 409 (refused; `detail` says why, e.g.
        no simulator runs) or 504 (a simulator did not answer in time)."""
        body = action.model_dump(mode="json", exclude_none=True)
        return ClockChanged.model_validate(self.post("/clock", body))

    # -- the street's figures and the pipeline's health ---------------------------------------
    def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/stats"))

    def quality(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/quality"))

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.get("/health"))

    def dead_letters(self, *, limit: int | None = None) -> list[DeadLetter]:
        return cast(list[DeadLetter], self.get("/dead-letters", limit=limit))

    # -- drills (scenario runs in the backend) ------------------------------------------------
    def scenarios(self) -> list[ShippedScenario]:
        """GET /scenarios: the shipped scenarios a run may name."""
        return cast(list[ShippedScenario], self.get("/scenarios"))

    def runs(self) -> list[dict[str, Any]]:
        """GET /scenarios/runs: the recent drill runs, newest first."""
        return cast(list[dict[str, Any]], self.get("/scenarios/runs"))

    def run(self, run_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.get(f"/scenarios/runs/{run_id}"))

    def start_run(self, name: str) -> dict[str, Any]:
        """POST /scenarios/runs for a shipped scenario (an operate key)."""
        return cast(dict[str, Any], self.post("/scenarios/runs", {"name": name}))

    def start_inline_run(self, scenario: dict[str, Any]) -> dict[str, Any]:
        """POST /scenarios/runs for a scenario in the file format (an operate key)."""
        return cast(dict[str, Any], self.post("/scenarios/runs", {"scenario": scenario}))

    def stop_run(self, run_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.post(f"/scenarios/runs/{run_id}/stop", {}))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()
