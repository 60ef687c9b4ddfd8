"""The backend on the street's clock, against a real Mosquitto and a real backend process.

No simulator runs here: the test announces a clock itself, as the `simulator` user, retained on
`lijia/sim/clock/sim-test` (contracts/clock.py), at 60x and hours away from wall time, so every
street fact the backend stamps can be told from wall time. (The same with a real simulator,
steered end to end, is in the simulator's tests.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.credentials import Credentials
from adapters.mqtt import make_client
from backend.street_clock import NO_SIMULATOR
from contracts.clock import ClockState, clock_topic
from contracts.topics import Channel
from contracts.vocabulary import STREET_TZ
from stack.broker import BrokerProcess
from stack.processes import READ_KEY, BackendProcess, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

SPEED = 60.0
AWAY = timedelta(hours=-5)  # the street runs five hours behind the wall clock


class FakeSimulator:
    """Announces a clock as a simulator would (retained), and answers nothing."""

    def __init__(self, port: int, password: str, name: str = "sim-test") -> None:
        self.name, self.seq = name, 0
        self.client = make_client(f"test-{name}-{time.monotonic_ns()}", "simulator", password)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.client.is_connected, timeout=10)

    def announce(self, street: datetime, speed: float | str = SPEED) -> ClockState:
        self.seq += 1
        state = ClockState(
            simulator=self.name,
            seq=self.seq,
            wall=datetime.now(UTC),
            street=street,
            speed=speed,
            seed=42,
            start=street - timedelta(hours=1),
        )
        self._publish(state.model_dump_json().encode())
        return state

    def gone(self) -> None:
        """What its Last Will says: an empty retained payload."""
        self._publish(b"")

    def _publish(self, payload: bytes) -> None:
        info = self.client.publish(clock_topic(self.name), payload, qos=1, retain=True)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def backend(broker: BrokerProcess, creds_dir: Path, tmp_path: Path) -> Iterator[BackendProcess]:
    db = f"sqlite:///{tmp_path / 'lijia.db'}"
    proc = BackendProcess(broker.port, creds_dir, db, tmp_path / "backend").start()
    yield proc
    proc.stop()


@pytest.fixture
def sim(broker: BrokerProcess, creds: Credentials) -> Iterator[FakeSimulator]:
    assert creds.simulator_password
    fake = FakeSimulator(broker.port, creds.simulator_password)
    yield fake
    fake.close()


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def clock(backend: BackendProcess) -> dict[str, Any]:
    return backend.get("/clock")  # type: ignore[no-any-return]


def follow(backend: BackendProcess, sim: FakeSimulator, street: datetime, **kw: Any) -> ClockState:
    state = sim.announce(street, **kw)
    wait_until(lambda: clock(backend)["source"] == "simulator", timeout=10)
    return state


def test_get_clock_follows_the_announcement_and_falls_back_to_wall_time(
    backend: BackendProcess, sim: FakeSimulator
) -> None:
    frames: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", backend.url + "/stream", headers={"X-API-Key": READ_KEY}, timeout=30
        ) as resp:
            for line in resp.iter_lines():
                connected.set()
                frames.append(line)
                if line.startswith("data:") and frames[-2:-1] == ["event: clock"]:
                    return

    threading.Thread(target=listen, daemon=True).start()
    assert connected.wait(10)
    view = clock(backend)
    assert view["source"] == "wall" and view["speed"] == 1.0 and view["simulators"] == []
    assert abs((ts(view["now"]) - ts(view["wall"])).total_seconds()) < 1e-3
    state = follow(backend, sim, datetime.now(UTC) + AWAY)
    view = clock(backend)
    assert view["simulators"] == ["sim-test"] and view["speed"] == SPEED and view["seed"] == 42
    # The backend's street time is the announced mapping, read at its own wall time.
    assert abs((ts(view["now"]) - state.street_at(ts(view["wall"]))).total_seconds()) < 1e-3
    assert view["day"] == ts(view["now"]).astimezone(STREET_TZ).date().isoformat()
    health = backend.health()  # the machinery's times are wall time; the street's is shown too
    assert AWAY <= ts(health["street_now"]) - ts(health["wall_now"]) < AWAY + timedelta(hours=1)
    # The live stream tells of the change: `event: clock`, the view as GET /clock shows it.
    wait_until(lambda: "event: clock" in frames)
    data = json.loads(frames[frames.index("event: clock") + 1].removeprefix("data:"))
    assert data["clock"]["source"] == "simulator" and data["clock"]["speed"] == SPEED
    sim.gone()
    wait_until(lambda: clock(backend)["source"] == "wall", timeout=10)


def test_post_clock_is_refused_without_a_simulator_or_at_max_and_times_out_unanswered(
    backend: BackendProcess, sim: FakeSimulator
) -> None:
    pause = {"action": "pause"}
    assert backend.post("/clock", pause, key=READ_KEY).status_code == 403
    resp = backend.post("/clock", pause)
    assert (resp.status_code, resp.json()["detail"]) == (409, NO_SIMULATOR)
    follow(backend, sim, datetime.now(UTC) + AWAY, speed="max")
    resp = backend.post("/clock", pause)
    assert resp.status_code == 409 and "'max'" in resp.json()["detail"]
    sim.announce(datetime.now(UTC) + AWAY)
    wait_until(lambda: clock(backend)["speed"] == SPEED, timeout=10)
    resp = backend.post("/clock", {"action": "jump", "at": "07:30"})  # nobody answers
    assert resp.status_code == 504 and "sim-test" in resp.json()["detail"]
    assert backend.post("/clock", {"action": "jump"}).status_code == 422  # neither to nor at
    spec = backend.get("/openapi.json")["paths"]["/clock"]
    assert {"409", "504"} <= set(spec["post"]["responses"]) and "get" in spec


def test_an_injected_tailgating_is_on_street_time_first_in_the_feed_and_stays_active(
    backend: BackendProcess, sim: FakeSimulator
) -> None:
    follow(backend, sim, datetime.now(UTC) + AWAY)
    started = time.monotonic()
    before = ts(clock(backend)["now"])
    resp = backend.post("/events/inject", {"device_id": "gate-north", "type": "tailgating"})
    assert resp.status_code == 202, resp.text
    after = ts(clock(backend)["now"])
    event_id = resp.json()["event_id"]
    event = wait_until(lambda: _event(backend, event_id))
    assert before <= ts(event["ts"]) <= after  # street time, five hours from the wall clock
    assert backend.get("/events")["data"][0]["event_id"] == event_id  # the top of the feed
    alarm = wait_until(lambda: _alarms(backend, "gate-north", "tailgating"))[0]
    assert alarm["status"] == "active" and ts(alarm["raised_at"]) == ts(event["ts"])
    notes = backend.get(f"/alarms/{alarm['id']}")["notes"]
    assert before <= ts(notes[0]["at"]) <= ts(clock(backend)["now"])  # noted on street time
    # What clears it is the rule's quiet period (gate `tailgating`: clear_after_s=1800 street
    # seconds, contracts/kinds/gate.py), measured on the gate's own street time: no gate message
    # comes here, and at 60x those 1,800 street seconds take 30 wall seconds anyway. So for 10
    # wall seconds from just before it was injected it stays active.
    while time.monotonic() < started + 10:
        (seen,) = _alarms(backend, "gate-north", "tailgating")
        assert seen["status"] == "active", seen
        time.sleep(0.5)


def test_a_commands_timeline_is_on_street_time_and_its_delivery_timeout_on_wall_time(
    backend: BackendProcess, sim: FakeSimulator, creds: Credentials
) -> None:
    follow(backend, sim, datetime.now(UTC) + AWAY)
    gate = DeviceClient(backend.mqtt_port, "gate-south", creds.devices["gate-south"])
    try:
        before = ts(clock(backend)["now"])
        resp = backend.post("/devices/gate-south/commands", {"name": "open-once"})
        assert resp.status_code == 202, resp.text
        cmd = resp.json()
        assert before <= ts(cmd["created_at"]) <= ts(cmd["updated_at"]) <= ts(clock(backend)["now"])
        seen = [(cmd["status"], ts(cmd["updated_at"]))]
        for status in ("accepted", "done"):
            data = {"command_id": cmd["command_id"], "status": status}
            gate.send(gate.envelope("command-result", data), Channel.COMMAND_RESULTS)
            want = "accepted" if status == "accepted" else "succeeded"
            row = _wait_command(backend, cmd["command_id"], want)
            seen.append((row["status"], ts(row["updated_at"])))
        assert [s for s, _ in seen] == ["sent", "accepted", "succeeded"]
        times = [t for _, t in seen]
        assert times == sorted(times) and times[-1] <= ts(clock(backend)["now"])
    finally:
        gate.close()
    # gate-north runs no device: the command times out by its wall-clock deadline (5 s here).
    sent_wall = datetime.now(UTC)
    cmd = backend.post("/devices/gate-north/commands", {"name": "open-once"}).json()
    deliver_by = ts(cmd["deliver_by"])
    assert timedelta(seconds=4) < deliver_by - sent_wall < timedelta(seconds=6)  # wall time
    done = _wait_command(backend, cmd["command_id"], "timed-out", timeout=20)
    # Timed out once the wall clock passed deliver_by: 5 wall seconds are 300 street seconds.
    elapsed = ts(done["updated_at"]) - ts(done["created_at"])
    assert elapsed >= timedelta(seconds=5 * SPEED)


def test_stats_default_day_follows_the_street_day(
    backend: BackendProcess, sim: FakeSimulator
) -> None:
    street_day = date(2026, 3, 1)  # nowhere near the wall calendar's day
    assert backend.get("/stats")["day"] == datetime.now(STREET_TZ).date().isoformat()
    before_midnight = datetime(2026, 3, 1, 23, 59, 50, tzinfo=STREET_TZ)
    follow(backend, sim, before_midnight.astimezone(UTC))
    # 10 street seconds to midnight are a sixth of a wall second at 60x.
    next_day = (street_day + timedelta(days=1)).isoformat()
    wait_until(lambda: backend.get("/stats")["day"] == next_day, timeout=5)
    assert clock(backend)["day"] == next_day


def test_clock_skew_is_measured_against_street_time_and_a_backlog_is_not_skew(
    backend: BackendProcess, sim: FakeSimulator, creds: Credentials
) -> None:
    state = follow(backend, sim, datetime.now(UTC) + AWAY)

    def street() -> datetime:
        return state.street_at(datetime.now(UTC))

    ahead = DeviceClient(backend.mqtt_port, "gate-longtang", creds.devices["gate-longtang"])
    on_time = DeviceClient(backend.mqtt_port, "gate-north", creds.devices["gate-north"])
    backlog = DeviceClient(backend.mqtt_port, "gate-south", creds.devices["gate-south"])
    try:
        ahead.send(ahead.envelope(ts=street() + timedelta(seconds=600)))
        on_time.send(on_time.envelope(ts=street()))
        # Back from a 30-minute outage: a device resends what it kept, all at once.
        now = street()
        for i in range(30):
            backlog.send(backlog.envelope(ts=now - timedelta(minutes=30 - i)))
        wait_until(lambda: len(backend.event_ids(device_id="gate-south")) == 30)
        twin = wait_until(lambda: _twin_judged(backend, "gate-longtang"))
        assert twin["clock_skewed"] is True and 500 < twin["clock_skew_s"] <= 600.1
        twin = wait_until(lambda: _twin_judged(backend, "gate-north"))
        assert twin["clock_skewed"] is False and -240 < twin["clock_skew_s"] <= 0.1
        assert backend.get("/devices/gate-south")["clock_skewed"] is False
        backlog.send(backlog.envelope(ts=street()))  # live again
        twin = wait_until(lambda: _twin_judged(backend, "gate-south"))
        assert twin["clock_skewed"] is False
    finally:
        for device in (ahead, on_time, backlog):
            device.close()


# -- helpers -----------------------------------------------------------------------------------
def _event(backend: BackendProcess, event_id: str) -> dict[str, Any] | None:
    found = backend.get("/events", limit=1000)["data"]
    return next((e for e in found if e["event_id"] == event_id), None)


def _alarms(backend: BackendProcess, device: str, rule: str) -> list[dict[str, Any]]:
    rows = backend.get("/alarms", status="all", device_id=device)
    return [a for a in rows if a["rule"] == rule]


def _wait_command(
    backend: BackendProcess, command_id: str, status: str, timeout: float = 15
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        row: dict[str, Any] = backend.get(f"/commands/{command_id}")
        return row if row["status"] == status else None

    found: dict[str, Any] = wait_until(reached, timeout=timeout)
    return found


def _twin_judged(backend: BackendProcess, device: str) -> dict[str, Any] | None:
    twin: dict[str, Any] = backend.get(f"/devices/{device}")
    return twin if twin["clock_skew_s"] is not None else None
