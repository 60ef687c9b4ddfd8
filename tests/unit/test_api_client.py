"""The typed REST client's methods send the requests the console and the scenario tools send."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.api_client import EXPORT_TIMEOUT_S, ApiClient
from contracts.clock import ClockAction, ClockView

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _sent(call: Callable[[ApiClient], Any], answer: Any = None) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={} if answer is None else answer)

    with ApiClient("http://backend.test", "k", transport=httpx.MockTransport(handler)) as api:
        call(api)
    return seen[0]


@pytest.mark.parametrize(
    ("call", "method", "path", "params", "body"),
    [
        (lambda a: a.devices(), "GET", "/devices", {}, None),
        (
            lambda a: a.devices(kind="gate", availability=None, alarm=False),
            "GET",
            "/devices",
            {"kind": "gate", "alarm": "false"},
            None,
        ),
        (lambda a: a.device("gate-1"), "GET", "/devices/gate-1", {}, None),
        (
            lambda a: a.telemetry("cab-1", field="temp_c", bucket="hour", since=T0),
            "GET",
            "/devices/cab-1/telemetry",
            {"field": "temp_c", "bucket": "hour", "since": T0.isoformat()},
            None,
        ),
        (
            lambda a: a.events(limit=200, injected=True, since=T0),
            "GET",
            "/events",
            {"limit": "200", "injected": "true", "since": T0.isoformat()},
            None,
        ),
        (lambda a: a.event("e1"), "GET", "/events/e1", {}, None),
        (lambda a: a.alarms(status="open"), "GET", "/alarms", {"status": "open"}, None),
        (lambda a: a.alarm(7), "GET", "/alarms/7", {}, None),
        (
            lambda a: a.acknowledge_alarm(7, by="ops", comment=None),
            "POST",
            "/alarms/7/acknowledge",
            {},
            {"by": "ops", "comment": None},
        ),
        (
            lambda a: a.clear_alarm(7, by="ops", comment="fixed"),
            "POST",
            "/alarms/7/clear",
            {},
            {"by": "ops", "comment": "fixed"},
        ),
        (
            lambda a: a.comment_alarm(7, by="ops", text="on it"),
            "POST",
            "/alarms/7/comments",
            {},
            {"by": "ops", "text": "on it"},
        ),
        (
            lambda a: a.commands(device_id="gate-1"),
            "GET",
            "/commands",
            {"device_id": "gate-1"},
            None,
        ),
        (lambda a: a.command("c1"), "GET", "/commands/c1", {}, None),
        (
            lambda a: a.send_command("gate-1", "open", {"for_s": 5}),
            "POST",
            "/devices/gate-1/commands",
            {},
            {"name": "open", "params": {"for_s": 5}},
        ),
        (lambda a: a.stats(), "GET", "/stats", {}, None),
        (lambda a: a.quality(), "GET", "/quality", {}, None),
        (lambda a: a.health(), "GET", "/health", {}, None),
        (lambda a: a.dead_letters(limit=50), "GET", "/dead-letters", {"limit": "50"}, None),
        (lambda a: a.scenarios(), "GET", "/scenarios", {}, None),
        (lambda a: a.runs(), "GET", "/scenarios/runs", {}, None),
        (lambda a: a.run("r1"), "GET", "/scenarios/runs/r1", {}, None),
        (lambda a: a.start_run("door-jam"), "POST", "/scenarios/runs", {}, {"name": "door-jam"}),
        (
            lambda a: a.start_inline_run({"name": "x"}),
            "POST",
            "/scenarios/runs",
            {},
            {"scenario": {"name": "x"}},
        ),
        (lambda a: a.stop_run("r1"), "POST", "/scenarios/runs/r1/stop", {}, {}),
        (
            lambda a: a.inject_body({"device_id": "gate-1", "type": "x", "extra": 1}),
            "POST",
            "/events/inject",
            {},
            {"device_id": "gate-1", "type": "x", "extra": 1},
        ),
    ],
)
def test_each_method_sends_its_request(
    call: Callable[[ApiClient], Any],
    method: str,
    path: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
) -> None:
    request = _sent(call)
    assert (request.method, request.url.path, dict(request.url.params)) == (method, path, params)
    assert (json.loads(request.content) if request.content else None) == body


def test_the_csv_export_takes_the_event_filters_and_a_longer_time_out() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ts,device_id\n")

    with ApiClient("http://backend.test", transport=httpx.MockTransport(handler)) as api:
        assert api.events_csv(kind="gate", injected=False) == "ts,device_id\n"
    assert seen[0].url.path == "/events.csv"
    assert dict(seen[0].url.params) == {"kind": "gate", "injected": "false"}
    assert seen[0].extensions["timeout"]["read"] == EXPORT_TIMEOUT_S


def test_the_clock_is_read_and_steered_in_the_contracts_models() -> None:
    view = {
        "source": "simulator",
        "now": "2026-12-07T00:00:00+00:00",
        "wall": T0.isoformat(),
        "day": "2026-12-07",
        "speed": 60.0,
        "simulators": ["sim-1"],
    }
    request = _sent(lambda a: a.clock(), view)
    assert (request.method, request.url.path) == ("GET", "/clock")
    with ApiClient(
        "http://backend.test",
        transport=httpx.MockTransport(lambda _r: httpx.Response(200, json=view)),
    ) as api:
        assert api.clock() == ClockView.model_validate(view)
    answer = {"clock": view, "acks": []}
    request = _sent(lambda a: a.set_clock(ClockAction(action="speed", speed=10)), answer)
    assert (request.method, request.url.path) == ("POST", "/clock")
    assert json.loads(request.content) == {"action": "speed", "speed": 10.0}
    at = ClockAction.model_validate({"action": "jump", "at": "07:30"})
    request = _sent(lambda a: a.set_clock(at), answer)
    assert json.loads(request.content) == {"action": "jump", "at": "07:30:00"}
