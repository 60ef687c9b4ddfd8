"""The drill engine without a broker or a backend: the injected-envelope builder, the progress
events and their terminal styling, the typed REST client, and a run against a fake street."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from adapters.api_client import ApiClient, ApiNotJson, ApiRefused, ApiUnreachable
from backend.api.context import AppContext
from backend.api.drills import BackendStreet
from backend.street_clock import StreetClock
from contracts.clock import ClockAction, ClockState, ClockView, clock_topic
from contracts.injection import InvalidEnvelope, injected_envelope
from contracts.topics import Channel
from contracts.validation import ContractError
from scenarios.cli import styled
from scenarios.expectations import describe
from scenarios.http_street import HttpStreet
from scenarios.model import Scenario
from scenarios.port import AlarmSeen, CommandSeen, EventQuery, EventsPage, count_events
from scenarios.progress import (
    CommandSent,
    DrillSent,
    RunEvent,
    StepDone,
    StepFailed,
    StepStarted,
    Stopped,
    VerdictReached,
)
from scenarios.runner import Run
from scenarios.wire import Connection, DevicePublishers, ScenarioError, build_envelope

SECRET = "Wang Fang 13800138000"


# -- the injected envelope ---------------------------------------------------------------------
def test_injected_envelope_is_seq_zero_flagged_and_validated() -> None:
    env = injected_envelope(
        "gate", "gate-south", Channel.EVENTS, "entry-granted", {"method": "card"}, run_id="run-1"
    )
    assert (env.seq, env.injected, env.run_id, env.boot) == (0, True, "run-1", None)
    assert env.data["method"] == "card" and env.ts.tzinfo is not None


def test_injected_envelope_refusals_name_fields_never_values() -> None:
    with pytest.raises(ContractError) as data_error:
        injected_envelope("gate", "gate-south", Channel.EVENTS, "entry-granted", {"method": SECRET})
    assert data_error.value.reason.startswith("invalid-data: method")
    assert SECRET not in str(data_error.value)
    with pytest.raises(InvalidEnvelope, match="invalid envelope: correlation_id"):
        injected_envelope(
            "gate",
            "gate-south",
            Channel.EVENTS,
            "entry-granted",
            {"method": "card"},
            correlation_id=SECRET,
        )
    # The scenario tools word the same refusals for the operator.
    with pytest.raises(ScenarioError, match=r"^gate-south \(gate\) events 'entry-granted': inv"):
        build_envelope("gate", "gate-south", Channel.EVENTS, "entry-granted", {"method": SECRET})


# -- progress events ---------------------------------------------------------------------------
def test_progress_events_read_as_the_run_log_and_are_styled_for_the_terminal() -> None:
    started = StepStarted(2, "restock", 1.25)
    assert started.text == "+  1.2 s step 2 restock"
    assert styled(started) == "[dim]+  1.2 s[/] step 2 restock"
    verdict = VerdictReached("the alarm [raised]", False, "nothing yet", 3.0)
    assert verdict.text == "✘ the alarm [raised]: nothing yet (+3.0 s)"
    assert styled(verdict) == r"[red]✘[/] the alarm \[raised]: nothing yet (+3.0 s)"
    assert styled(StepFailed("boom")) == "[red]step failed:[/] boom"
    assert styled(Stopped()) == "[yellow]stopped by the operator[/]"
    assert styled(StepDone(1, 3)) is None
    drill = DrillSent("door-jam", ("a", "b", "c", "d", "e"), 30.0)
    assert drill.text == "door-jam → 5 device(s) (a, b, c +2) for 30 s"
    assert CommandSent("restock", "cab", "c1", "sent").text == "command restock → cab (c1, sent)"


# -- the typed REST client ---------------------------------------------------------------------
def _client(handler: Any, key: str | None = "k") -> ApiClient:
    return ApiClient("http://backend.test/", key, transport=httpx.MockTransport(handler))


def test_api_client_sends_the_key_and_spells_parameters_as_the_api_reads_them() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    with _client(handler) as api:
        api.events(device_id="gate-south", injected=False, run_id=None, limit=1000)
    assert seen[0].headers["X-API-Key"] == "k"
    assert dict(seen[0].url.params) == {
        "device_id": "gate-south",
        "injected": "false",
        "limit": "1000",
    }


def test_api_client_errors() -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": [{"loc": ["body", "name"], "msg": "bad"}]})

    with pytest.raises(ApiRefused) as refused:
        _client(refuse).send_command("gate-south", "open", {})
    assert refused.value.status == 422 and refused.value.detail == "body.name: bad"
    assert str(refused.value).startswith("POST /devices/gate-south/commands → 422: ")

    def not_json(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>")

    with pytest.raises(ApiNotJson):
        _client(not_json).get("/health")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ApiUnreachable, match=r"^API http://backend.test unreachable"):
        _client(down, key=None).get("/health")


def test_http_street_keeps_the_rule_asked_for_and_words_errors_for_the_operator() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/alarms":
            rows = [
                {"id": 1, "rule": "door-held-open", "status": "active", "occurrences": 2},
                {"id": 2, "rule": "other", "status": "active", "occurrences": 1},
            ]
            return httpx.Response(200, json=rows)
        return httpx.Response(404, json={"detail": "no such command"})

    street = HttpStreet("http://backend.test", "k")
    street.api = _client(handler)
    assert street.alarms("gate-south", "door-held-open") == [AlarmSeen(1, "active", 2, None)]
    with pytest.raises(ScenarioError, match="GET /commands/x → 404"):
        street.command("x")


# -- a run against a fake street ---------------------------------------------------------------
class FakeStreet:
    """Commands end as `ends`; every event query finds `stored` envelopes, in pages of 2."""

    def __init__(self, ends: str = "succeeded", stored: int = 0) -> None:
        self.ends, self.stored = ends, stored
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def alarms(self, device_id: str, rule: str) -> list[AlarmSeen]:
        return []

    def events_page(self, query: EventQuery, cursor: int | None) -> EventsPage:
        start = cursor or 0
        rows: list[dict[str, Any]] = [{"data": {}} for _ in range(min(2, self.stored - start))]
        nxt = start + len(rows)
        return EventsPage(rows, nxt if nxt < self.stored else None)

    def device(self, device_id: str) -> dict[str, Any]:
        return {"device_id": device_id, "availability": "online"}

    def devices(self, kind: str | None) -> list[dict[str, Any]]:
        return [self.device("gate-south")]

    def send_command(self, device_id: str, name: str, params: dict[str, Any]) -> CommandSeen:
        self.sent.append((device_id, name, params))
        return CommandSeen("cmd-1", "sent")

    def command(self, command_id: str) -> CommandSeen:
        return CommandSeen(command_id, self.ends, "no answer" if self.ends == "timed-out" else None)

    def clock(self) -> ClockView:
        return ClockView.of([])  # no simulator: street time is wall time

    def set_clock(self, action: ClockAction) -> ClockView:
        raise ScenarioError("no simulator runs")

    def close(self) -> None:
        pass


def _scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "fake",
            "steps": [
                {
                    "id": "open",
                    "command": {
                        "device": "gate-south",
                        "name": "open-once",
                        "params": {"tag": "{{run_id}}"},
                        "expect": "succeeded",
                        "within": 5,
                    },
                }
            ],
            "expect": [
                {"twin": {"device": "gate-south", "field": "availability", "value": "online"}},
                {"events": {"device": "gate-south", "at_least": 3, "within": 1}},
            ],
        }
    )


def _play(street: FakeStreet) -> tuple[Run, list[RunEvent]]:
    events: list[RunEvent] = []
    run = Run(_scenario(), street, DevicePublishers(Connection()), sink=events.append)
    run.execute()
    return run, events


def test_a_run_reports_its_progress_as_events_and_decides_every_expectation() -> None:
    street = FakeStreet(stored=5)
    run, events = _play(street)
    assert run.ok, run.verdicts
    assert street.sent == [("gate-south", "open-once", {"tag": run.run_id})]
    # The watcher decides in its own thread: its verdicts interleave with the timeline's events.
    timeline = [type(e).__name__ for e in events if not isinstance(e, VerdictReached)]
    assert timeline == ["StepStarted", "CommandSent", "StepDone"]
    assert sorted(e.name for e in events if isinstance(e, VerdictReached)) == sorted(
        v.name for v in run.verdicts
    )
    names = [v.name for v in run.verdicts]
    assert names[0] == describe(_scenario().expect[0])
    assert names[2] == "command open-once on gate-south"


def test_a_command_that_ends_otherwise_fails_at_once() -> None:
    run, _events = _play(FakeStreet(ends="timed-out", stored=0))
    command = run.verdicts[2]
    assert command.passed is False and command.seen == "command cmd-1 timed-out (no answer)"


def test_counting_events_stops_past_the_cap() -> None:
    street = FakeStreet(stored=100)
    assert count_events(street, EventQuery(), cap=3) == 4
    assert count_events(FakeStreet(stored=5), EventQuery(), cap=10) == 5


def test_log_lines_carry_no_markup() -> None:
    _run, events = _play(FakeStreet(stored=5))
    lines = [e.text for e in events]
    assert lines and not any("[/" in line for line in lines), lines
    assert json.dumps(lines)  # plain strings


def test_http_street_reads_and_sets_the_streets_clock() -> None:
    wall = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    clock = ClockView(
        source="simulator", now=wall, wall=wall, day=wall.date(), speed=60.0, simulators=["s"]
    )
    posted: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(json.loads(request.content))
            if posted[-1]["action"] == "pause":
                return httpx.Response(409, json={"detail": "the street runs at 'max'"})
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(200, json=clock.model_dump(mode="json"))

    street = HttpStreet("http://backend.test", "k")
    street.api = _client(handler)
    assert street.clock() == clock
    assert street.set_clock(ClockAction(action="speed", speed="max")) == clock
    with pytest.raises(ScenarioError) as refused:
        street.set_clock(ClockAction(action="pause"))
    assert str(refused.value) == "the street's clock refused pause (409): the street runs at 'max'"
    assert posted == [{"action": "speed", "speed": "max"}, {"action": "pause"}]

    # A backend from before the street's clock has no GET /clock: it runs on wall time.
    older = HttpStreet("http://backend.test", "k")
    older.api = _client(lambda _r: httpx.Response(404, json={"detail": "Not Found"}))
    assert older.clock().source == "wall"


def test_the_backends_own_port_uses_its_street_clock_and_words_refusals() -> None:
    street_clock = StreetClock()
    street = BackendStreet(
        cast(
            AppContext,
            SimpleNamespace(clock=street_clock, publisher=SimpleNamespace(publish_control=print)),
        )
    )
    assert street.clock().source == "wall"
    with pytest.raises(ScenarioError, match=r"refused pause \(409\): no simulator is running"):
        street.set_clock(ClockAction(action="pause"))
    wall = datetime.now(UTC)
    state = ClockState(
        simulator="s", seq=1, wall=wall, street=wall, speed="max", seed=1, start=wall
    )
    street_clock.on_message(clock_topic("s"), state.model_dump_json().encode())
    assert street.clock().speed == "max"
    with pytest.raises(ScenarioError, match=r"refused jump \(409\): the street runs at 'max'"):
        street.set_clock(ClockAction(action="jump", at=time(7, 30)))
