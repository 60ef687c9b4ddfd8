"""Scenarios from the API (`/scenarios`), against a real Mosquitto and a real backend process: a
shipped drill started through the API passes with its verdicts, a running one is stopped, and
unknown names, bad requests and invalid inline scenarios are refused without echoing values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarios.model import load_scenario, shipped
from stack.processes import READ_KEY, BackendProcess, wait_until

pytestmark = pytest.mark.integration

SECRET = "Wang Fang 13800138000"  # personal data that must never come back in an error


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the storage tests cover PostgreSQL; these test the drill runs."""
    return f"sqlite:///{tmp_path / 'lijia.db'}"


def run_of(backend: BackendProcess, run_id: str) -> dict[str, Any]:
    row: dict[str, Any] = backend.get(f"/scenarios/runs/{run_id}")
    return row


def ended(backend: BackendProcess, run_id: str, timeout: float = 60) -> dict[str, Any]:
    row: dict[str, Any] = wait_until(
        lambda: (r := run_of(backend, run_id))["status"] != "running" and r, timeout=timeout
    )
    return row


def endless(name: str) -> dict[str, Any]:
    """An inline scenario that injects one entry, then waits for an hour for an alarm that the
    entry never raises: it runs until it is stopped."""
    return {
        "name": name,
        "steps": [
            {
                "id": "granted",
                "inject": {
                    "device": "gate-south",
                    "type": "entry-granted",
                    "data": {"method": "card"},
                },
            },
            {"wait": 3600},
        ],
        "expect": [
            {"name": "the entry is stored", "events": {"device": "gate-south", "at_least": 1}},
            {
                "name": "the door is held open (never)",
                "alarm": {"device": "gate-south", "rule": "door-held-open", "within": 3600},
            },
        ],
    }


def test_shipped_scenarios_are_listed_and_one_started_from_the_api_passes(
    backend: BackendProcess,
) -> None:
    listed = {s["name"]: s for s in backend.get("/scenarios")}
    files = {load_scenario(p).name: load_scenario(p) for p in shipped()}
    assert set(listed) == set(files)
    for name, sc in files.items():
        assert listed[name]["steps"] == len(sc.steps)
        assert len(listed[name]["expectations"]) == len(sc.expect)
        assert listed[name]["scenario"]["name"] == name
    assert "the stock-out raises an alarm" in listed["medicine-shortage"]["expectations"]

    # This drill also sends a command (in the backend's process) and expects it to
    # time out, as no simulator answers here.
    resp = backend.post("/scenarios/runs", {"name": "medicine-shortage"})
    assert resp.status_code == 201, resp.text
    started = resp.json()
    assert started["name"] == "medicine-shortage" and started["source"] == "shipped"
    assert started["run_id"].startswith("run-") and started["steps_total"] == 3

    # A second run of the same drill while this one runs would count its alarms as its own.
    again = backend.post("/scenarios/runs", {"name": "medicine-shortage"})
    assert again.status_code == 409 and started["run_id"] in again.json()["detail"]

    run = ended(backend, started["run_id"])
    assert run["status"] == "passed", run
    assert run["steps_done"] == run["steps_total"] == 3
    assert run["ended_at"] is not None and run["error"] is None
    verdicts = {v["name"]: v for v in run["verdicts"]}
    assert set(verdicts) == {
        "the stock-out raises an alarm",
        "the refill clears the stock-out alarm",
        "command restock on cabinet-lijia-garden",
    }
    assert all(v["passed"] is True for v in verdicts.values())
    assert "timed-out" in verdicts["command restock on cabinet-lijia-garden"]["seen"]
    assert any("step 2 restock" in line for line in run["log"])
    assert not any("[" in line and "[/" in line for line in run["log"]), "markup in the log"

    # What it injected is tagged with its run id; the list shows it.
    events = backend.get("/events", run_id=run["run_id"])["data"]
    assert {e["type"] for e in events} == {"stock-out", "restocked"}
    assert all(e["injected"] for e in events)
    assert [r["run_id"] for r in backend.get("/scenarios/runs")] == [run["run_id"]]


def test_a_running_scenario_is_stopped(backend: BackendProcess) -> None:
    started = backend.post("/scenarios/runs", {"scenario": endless("endless-wait")})
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    assert started.json()["source"] == "inline"
    # The entry is injected and its expectation decided; the hour-long wait is under way.
    wait_until(lambda: [v["passed"] for v in run_of(backend, run_id)["verdicts"]] == [True, None])
    assert run_of(backend, run_id)["status"] == "running"

    stopped = backend.post(f"/scenarios/runs/{run_id}/stop", {})
    assert stopped.status_code == 200, stopped.text
    run = ended(backend, run_id)
    assert run["status"] == "stopped" and run["stop_requested"] is True
    assert run["ended_at"] is not None
    assert run["steps_done"] == 1  # the wait never completed
    entry, door = run["verdicts"]
    assert entry["passed"] is True
    assert door["passed"] is False and "stopped by the operator" in door["seen"]
    assert any("stopped by the operator" in line for line in run["log"])

    # Stopping an ended run changes nothing.
    again = backend.post(f"/scenarios/runs/{run_id}/stop", {})
    assert again.status_code == 200 and again.json()["status"] == "stopped"


def test_at_most_three_runs_at_once(backend: BackendProcess) -> None:
    ids = []
    for i in range(3):
        resp = backend.post("/scenarios/runs", {"scenario": endless(f"endless-{i}")})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["run_id"])
    busy = backend.post("/scenarios/runs", {"scenario": endless("endless-3")})
    assert busy.status_code == 409 and "at most 3" in busy.json()["detail"]
    for run_id in ids:
        assert backend.post(f"/scenarios/runs/{run_id}/stop", {}).status_code == 200
    assert all(ended(backend, run_id)["status"] == "stopped" for run_id in ids)
    # With those ended, there is room again.
    resp = backend.post("/scenarios/runs", {"scenario": endless("endless-3")})
    assert resp.status_code == 201
    backend.post(f"/scenarios/runs/{resp.json()['run_id']}/stop", {})


# (request body, where the error must point)
INVALID: list[tuple[dict[str, Any], list[Any]]] = [
    # Two actions in one step; the data carries personal text.
    (
        {
            "scenario": {
                "name": "two-actions",
                "steps": [
                    {
                        "wait": 1,
                        "inject": {
                            "device": "gate-south",
                            "type": "entry-granted",
                            "data": {"resident": SECRET},
                        },
                    }
                ],
            }
        },
        ["body", "scenario", "steps", 0],
    ),
    # Well formed, but the contract refuses the payload (method is an enumeration).
    (
        {
            "scenario": {
                "name": "bad-payload",
                "steps": [
                    {
                        "inject": {
                            "device": "gate-south",
                            "type": "entry-granted",
                            "data": {"method": SECRET},
                        }
                    }
                ],
            }
        },
        ["body", "scenario", "steps", 0, "inject", "data"],
    ),
    # A device the street does not have.
    (
        {
            "scenario": {
                "name": "nowhere",
                "steps": [{"telemetry": {"device": "gate-atlantis", "data": {"x": SECRET}}}],
            }
        },
        ["body", "scenario", "steps", 0, "telemetry", "device"],
    ),
    # A template far past the calendar.
    (
        {
            "scenario": {
                "name": "far-future",
                "steps": [
                    {
                        "inject": {
                            "device": "gate-south",
                            "type": "entry-granted",
                            "data": {"method": "{{now+99999999999999s}}"},
                        }
                    }
                ],
            }
        },
        ["body", "scenario", "steps", 0, "inject", "data"],
    ),
    # A field that does not exist, and both a name and a scenario.
    ({"scenario": {"name": "x", "steps": [], "note": SECRET}}, ["body", "scenario", "note"]),
    ({"name": "quiet-hours-music", "scenario": {"name": SECRET.replace(" ", "-")}}, ["body"]),
]


def test_bad_requests_are_refused_without_echoing_values(backend: BackendProcess) -> None:
    # Invalid inline scenarios: 422, pointing at the place, never repeating what was sent.
    for body, where in INVALID:
        resp = backend.post("/scenarios/runs", body)
        assert resp.status_code == 422, resp.text
        assert SECRET not in resp.text and "13800138000" not in resp.text, resp.text
        locs = [e["loc"] for e in resp.json()["detail"]]
        assert any(loc[: len(where)] == where for loc in locs), (where, locs)
    # Unknown names and runs.
    resp = backend.post("/scenarios/runs", {"name": "no-such-drill"})
    assert resp.status_code == 404 and "GET /scenarios" in resp.json()["detail"]
    assert (
        httpx.get(
            backend.url + "/scenarios/runs/run-0000000000000000", headers={"X-API-Key": READ_KEY}
        ).status_code
        == 404
    )
    assert backend.post("/scenarios/runs/run-0000000000000000/stop", {}).status_code == 404
    # Starting needs an operate key.
    body = {"name": "quiet-hours-music"}
    assert backend.post("/scenarios/runs", body, key=None).status_code == 401
    assert backend.post("/scenarios/runs", body, key=READ_KEY).status_code == 403
    # None of that started anything.
    assert backend.get("/scenarios/runs") == []
