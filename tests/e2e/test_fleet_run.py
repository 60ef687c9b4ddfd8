"""The simulator end to end: `python -m devices run` through Mosquitto into the backend.

- Two simulated days (a Sunday and a Monday, from local midnight, at `--speed max`) checked on
  what the backend stored: the shape of the day per kind, schools on the weekday only, quiet
  hours, linked journeys.
- Determinism through the real MQTT path: the same seed, twice at max speed and once
  accelerated, gives the same (device, seq, type, ts, correlation, data) as the pure street.
- An operator command to one device of each of the seven kinds, answered and applied.
- The street's size: one N for credentials (`stack credentials --devices`), simulator
  (`--devices`) and backend (`LIJIA_FLEET_SIZE`).

The backend provisions a street of STREET_SIZE devices. The simulated days run a lighter street
of some of those same devices (fewer gate passages, hourly telemetry): the broker's durable
settings (broker_config/: an autosave on every change) hold the whole pipeline to a few hundred
messages a second on this machine, and the shape of a day needs far fewer than the full street's
70,000 messages.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from adapters import credentials
from adapters.fleet import FLEET_SIZE_ENV, load_fleet
from contracts.envelope import Envelope
from contracts.fleet import Fleet
from contracts.vocabulary import STREET_TZ
from devices import daily
from devices.calendar import is_day_off
from devices.street import Street
from stack.broker import BrokerProcess
from stack.processes import READ_KEY, ROOT, BackendProcess, Simulator, clean_env, wait_until
from tests.helpers import command

pytestmark = pytest.mark.integration

STREET_SIZE = 30  # the 24 devices of the fleet file and 6 copies (the gates again)
# The lighter street for whole simulated days: the kinds whose day is checked, and the journeys'.
DAY_DEVICES = (
    "gate-north", "gate-east", "book-house-lijia", "cabinet-civic-centre",
    "school-lijia-middle", "stereo-lijia-garden-square", "stereo-smart-park",
    "property-app-lijia-garden",
)  # fmt: skip


def coming_sunday() -> date:
    """Midnight of a Sunday near today (device clocks run ahead; the backend allows it below),
    so the stored events are well inside the retention period whenever the test runs."""
    today = datetime.now(STREET_TZ).date()
    sunday = today + timedelta(days=(6 - today.weekday()) % 7)
    # A Sunday off before a working Monday: China's holidays move both (devices/calendar.py).
    while not is_day_off(sunday) or is_day_off(sunday + timedelta(days=1)):
        sunday += timedelta(days=7)
    return sunday


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=STREET_TZ)


def street() -> Fleet:
    return load_fleet(size=STREET_SIZE)


def day_street() -> Fleet:
    """DAY_DEVICES with their shipped rates, but a sixteenth of the gate passages, telemetry
    once an hour, and 3 journeys an hour (all of them end at its one book house, cabinet and
    property app)."""
    fleet = load_fleet()
    devices = []
    for d in fleet.devices:
        if d.id in DAY_DEVICES:
            rates = {**d.rates, "telemetry_every_s": 3600}
            if d.kind == "gate":
                rates["arrivals_per_hour"] = d.rates["arrivals_per_hour"] / 16
            devices.append(d.model_copy(update={"rates": rates}))
    return fleet.model_copy(update={"devices": devices, "journeys_per_hour": 3.0})


@pytest.fixture(scope="module")
def day_fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "day.yaml"
    path.write_text(yaml.safe_dump(day_street().model_dump(mode="json"), allow_unicode=True))
    return path


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # Storage runs on both databases elsewhere; this is about the simulated street.
    return f"sqlite:///{tmp_path / 'lijia.db'}"


@pytest.fixture(scope="module")
def creds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Credentials for a street of STREET_SIZE devices, made by the CLI as a user would."""
    out = tmp_path_factory.mktemp("credentials")
    done = subprocess.run(
        [sys.executable, "-m", "stack", "credentials", "--devices", str(STREET_SIZE),
         "--out", str(out)],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"for {STREET_SIZE} devices" in done.stdout
    return out


@pytest.fixture
def backend(
    broker: BrokerProcess, creds_dir: Path, database_url: str, tmp_path: Path
) -> Iterator[BackendProcess]:
    env = {
        FLEET_SIZE_ENV: str(STREET_SIZE),
        # Simulated days run ahead of the wall clock on purpose.
        "LIJIA_MAX_CLOCK_SKEW_S": "0",
    }
    proc = BackendProcess(
        broker.port, creds_dir, database_url, tmp_path / "backend", extra_env=env
    ).start()
    yield proc
    proc.stop()


def pure_street(fleet: Fleet, start: datetime, hours: float) -> list[tuple[Any, ...]]:
    """What the devices publish, computed without MQTT: (device, seq, type, ts, corr, data)."""
    s = Street(fleet)
    s.start(start)
    seq: Counter[str] = Counter()
    out = []
    for i, ts, e in s.run(start + timedelta(hours=hours)):
        device = s.specs[i].id
        data = e.data.model_dump(mode="json", exclude_none=True)
        out.append((device, seq[device], e.type, ts, e.correlation_id, data))
        seq[device] += 1
    return sorted(out, key=lambda row: (row[0], row[1]))


def stored_events(backend: BackendProcess) -> list[dict[str, Any]]:
    """Every stored event (events channel) through the CSV export: one request."""
    resp = httpx.get(backend.url + "/events.csv", headers={"X-API-Key": READ_KEY}, timeout=60)
    resp.raise_for_status()
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    for row in rows:
        row["ts"] = instant(row["ts"])
        row["data"] = json.loads(row["data"])
    return rows


def instant(text: str) -> datetime:
    """A stored timestamp (SQLite gives it back without an offset: it is UTC)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def hourly(stats: dict[str, Any], kind: str, stat: str) -> Counter[int]:
    """Counts of one headline figure per local hour of the day."""
    out: Counter[int] = Counter()
    for row in stats["hourly"]:
        if row["kind"] == kind and row["stat"] == stat:
            out[daily.local(instant(row["hour"])).hour] += row["count"]
    return out


def per_hour(counts: Counter[int], hours: range | tuple[int, ...]) -> float:
    return sum(counts[h] for h in hours) / len(hours)


# -- two days on the street, checked on what was stored ------------------------------------------
def test_two_days_of_the_street_stored_with_their_shape(
    broker: BrokerProcess,
    backend: BackendProcess,
    creds_dir: Path,
    day_fleet_file: Path,
    tmp_path: Path,
) -> None:
    sunday = coming_sunday()
    monday = sunday + timedelta(days=1)
    expected = pure_street(day_street(), local_midnight(sunday), 48)
    sim = Simulator(broker.port, creds_dir, tmp_path / "devices.log", "--fleet",
                    str(day_fleet_file), "--speed", "max", "--start", sunday.isoformat(),
                    "--hours", "48")  # fmt: skip
    sim.wait(90)
    assert "speed max" in sim.text() and "seed 2026" in sim.text()
    wait_until(lambda: backend.health()["stored"] >= len(expected), timeout=60)
    health = backend.health()
    assert health["stored"] == len(expected) and health["dead_lettered"] == 0, health

    weekday = backend.get("/stats", day=monday.isoformat())
    weekend = backend.get("/stats", day=sunday.isoformat())
    # Gates: morning rush (07-09) and evening (17-20) against the night.
    entries = hourly(weekday, "gate", "entries")
    night = max(per_hour(entries, range(1, 5)), 1.0)
    assert per_hour(entries, (7, 8)) > 8 * night, entries
    assert per_hour(entries, (17, 18, 19)) > 8 * night, entries
    assert per_hour(entries, (7, 8)) > 1.5 * per_hour(entries, (13, 14, 15)), entries
    # Book houses and stereos live in the evening.
    borrowed = hourly(weekday, "book-house", "borrowed")
    assert per_hour(borrowed, range(16, 21)) > 2 * per_hour(borrowed, range(7, 12)), borrowed
    tracks = hourly(weekday, "stereo", "tracks")
    # Tracks come in sessions (one session plays many), so the hours are lumpy: over 37
    # consecutive weeks of this test's Monday the evening/daytime ratio ran from 1.3 to 6.1
    # (each week's street day has its own random streams, devices/street.py).
    assert per_hour(tracks, range(18, 22)) > per_hour(tracks, range(9, 15)), tracks
    # Schools: Monday only.
    assert sum(hourly(weekend, "school", "arrivals").values()) == 0
    assert sum(hourly(weekday, "school", "arrivals").values()) > 300

    events = stored_events(backend)
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        by_kind[ev["kind"]].append(ev)
    windows = {
        "student-arrived": daily.SCHOOL_ARRIVALS,
        "picked-up": daily.SCHOOL_PICKUPS,
        "student-departed": daily.SCHOOL_PICKUPS,
        "visitor-registered": daily.SCHOOL_DAY,
    }
    assert by_kind["school"]
    for ev in by_kind["school"]:
        assert daily.local_date(ev["ts"]) == monday, ev
        assert windows[ev["type"]].contains(ev["ts"]), ev

    # Quiet hours: a violation only in them, and every loud track started in them is reported
    # (and the limiter turns it down) at that very instant.
    limits = {d.id: d.rates["quiet_volume_max"] for d in day_street().devices if d.kind == "stereo"}
    stereo = by_kind["stereo"]
    violations = {(e["device_id"], e["ts"]) for e in stereo if e["type"] == "quiet-hours-violation"}
    assert violations
    assert all(daily.QUIET_HOURS.contains(ts) for _, ts in violations)
    for e in stereo:
        if e["type"] == "track-started" and daily.QUIET_HOURS.contains(e["ts"]):
            loud = e["data"]["volume"] > limits[e["device_id"]]
            assert loud == ((e["device_id"], e["ts"]) in violations), e
        if e["type"] == "volume-changed" and e["data"]["by"] == "limiter":
            assert (e["device_id"], e["ts"]) in violations, e

    # Linked journeys: one id across a gate, a book house, a cabinet and a property app.
    journeys: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        if (ev["correlation_id"] or "").startswith("journey-"):
            journeys[ev["correlation_id"]].append(ev)
    assert len(journeys) > 50
    linked = 0
    for trip in journeys.values():
        kinds = {e["kind"] for e in trip}
        if len(kinds) >= 3:
            linked += 1
            assert len({e["device_id"] for e in trip}) >= 3
            times = sorted(e["ts"] for e in trip if e["type"] != "book-returned")
            assert times[-1] - times[0] < timedelta(hours=30)
    assert linked > 0.9 * len(journeys)


# -- determinism through the real MQTT path ------------------------------------------------------
class Recorder:
    """Subscribes as the backend user to every device's events and telemetry."""

    def __init__(self, port: int, password: str) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"recorder-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.username_pw_set(credentials.BACKEND_USER, password)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([("lijia/+/+/events", 1), ("lijia/+/+/telemetry", 1)])
        assert subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(bytes(msg.payload))

    def take(self, count: int) -> list[tuple[Any, ...]]:
        """Wait for `count` messages (and a moment for any extra), then hand them over."""
        wait_until(lambda: len(self.messages) >= count, timeout=60)
        time.sleep(0.5)
        with self.lock:
            taken, self.messages = self.messages, []
        rows = []
        for payload in taken:
            env = Envelope.model_validate_json(payload)
            rows.append((env.device_id, env.seq, env.type, env.ts, env.correlation_id, env.data))
        return sorted(rows, key=lambda row: (row[0], row[1]))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_same_seed_same_events_through_mqtt_at_any_speed(
    broker: BrokerProcess, creds_dir: Path, day_fleet_file: Path, tmp_path: Path
) -> None:
    monday = coming_sunday() + timedelta(days=1)
    start = local_midnight(monday) + timedelta(hours=17)  # the evening: journeys, music, readers
    hours = 2.0
    expected = pure_street(day_street(), start, hours)
    assert any((row[4] or "").startswith("journey-") for row in expected)
    recorder = Recorder(broker.port, credentials.load(creds_dir).backend_password)
    try:
        runs = []
        for n, speed in enumerate(("max", "max", "1800")):
            args = ("--fleet", str(day_fleet_file), "--speed", speed, "--seed", "2026",
                    "--start", start.isoformat(), "--hours", str(hours))  # fmt: skip
            sim = Simulator(broker.port, creds_dir, tmp_path / f"devices-{n}.log", *args)
            sim.wait(60)
            runs.append(recorder.take(len(expected)))
    finally:
        recorder.close()
    # Identical apart from wall-clock fields (event ids, boot ids, availability timestamps).
    assert runs[0] == expected
    assert runs[1] == expected
    assert runs[2] == expected


# -- one command to each kind; the street's size everywhere --------------------------------------
def telemetry(backend: BackendProcess, device: str) -> dict[str, Any]:
    return backend.get(f"/devices/{device}")["telemetry"]  # type: ignore[no-any-return]


def seed_with_an_early_request(fleet: Fleet, start: datetime) -> int:
    """A seed whose street files its first property request within 2 simulated minutes of
    `start`: the same seed brings it at the same instant through MQTT."""
    for seed in range(1, 200):
        s = Street(fleet, seed)
        s.start(start)
        if any(e.type == "request-created" for _, _, e in s.run(start + timedelta(minutes=2))):
            return seed
    raise AssertionError("no seed gives an early request")


def test_every_kind_obeys_a_command_on_a_street_of_n_devices(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> None:
    ids = {d.id for d in street().devices}
    assert len(ids) == STREET_SIZE and "gate-north-c1" in ids
    assert set(credentials.load(creds_dir).devices) == ids
    assert {d["device_id"] for d in backend.get("/devices")["data"]} == ids
    monday = coming_sunday() + timedelta(days=1)
    start = local_midnight(monday) + timedelta(hours=18)
    seed = seed_with_an_early_request(street(), start)
    sim = Simulator(broker.port, creds_dir, tmp_path / "devices.log", "--devices",
                    str(STREET_SIZE), "--speed", "30", "--start", start.isoformat(),
                    "--seed", str(seed))  # fmt: skip
    try:
        wait_until(
            lambda: all(d["availability"] == "online" for d in backend.get("/devices")["data"]),
            timeout=30,
        )
        assert f"{STREET_SIZE} devices" in sim.text()
        # The property app needs a request to act on: escalate the first one while it is open
        # (dispatch and work take simulated minutes to hours: seconds at 30x).
        created = wait_until(
            lambda: backend.get("/events", kind="property-app", type="request-created")["data"],
            timeout=30,
        )
        request = created[-1]
        request_id = request["data"]["request_id"]
        result = command(backend, request["device_id"], "escalate", request_id=request_id)
        assert result["status"] == "succeeded", result

        def escalated() -> bool:
            page = backend.get("/events", device_id=request["device_id"], type="request-escalated")
            return any(
                e["data"]["request_id"] == request_id and e["data"]["reason"] == "operator"
                for e in page["data"]
            )

        wait_until(escalated)

        def obeys(device: str, name: str, field: str, value: Any, **params: Any) -> None:
            before = wait_until(lambda: telemetry(backend, device))
            assert before.get(field) != value
            result = command(backend, device, name, **params)
            assert result["status"] == "succeeded", result
            wait_until(lambda: telemetry(backend, device).get(field) == value)

        obeys("gate-north", "lock-down", "lockdown", True, reason="drill")
        obeys("gate-north-c1", "lock-down", "door", "locked")  # a copy is a device like any
        obeys("cabinet-civic-centre", "lock", "locked", True)
        obeys("book-house-lijia", "lights-off", "lights", False)
        obeys("service-centre-lijia", "open-counter", "counters_open", 4)
        obeys("school-lijia-middle", "lock-down", "gate", "locked")
        quiet = {"start": "23:00", "end": "06:00"}
        obeys("stereo-smart-park", "set-quiet-hours", "quiet_hours", quiet, **quiet, max_volume=30)
        kinds = {d["device_id"]: d["kind"] for d in backend.get("/devices")["data"]}
        done = {
            kinds[c["device_id"]] for c in backend.get("/commands") if c["status"] == "succeeded"
        }
        assert len(done) == 7
    finally:
        sim.stop()
    assert "0 errors" in sim.text()
