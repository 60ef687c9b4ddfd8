"""Operating the street: for every kind, a scripted sequence gives the expected twin, an alarm
raised and then cleared, and the console's statistics; alarm lifecycle, gaps, offline, retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.credentials import Credentials
from adapters.fleet import load_fleet
from backend.db import init_db, make_engine, provision
from backend.ingest import Incoming, Registry, write_batch
from backend.maintenance import purge_personal
from backend.models import Event, StatHourly, table
from contracts.topics import Channel
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.helpers import DeviceClient, own_backend

pytestmark = pytest.mark.integration

CQ = timezone(timedelta(hours=8))
DAY: date = datetime.now(CQ).date()
T0 = datetime.combine(DAY, time(10, 0), CQ).astimezone(UTC)  # 10:00 today on the street
R1, R2 = "r-00000000000000a1", "r-00000000000000b2"

EVENTS, TELEMETRY = Channel.EVENTS, Channel.TELEMETRY


@dataclass
class Step:
    channel: Channel
    type: str
    data: dict[str, Any]
    at_s: float


@dataclass
class Script:
    kind: str
    device: str
    rule: str
    raising: list[Step]
    clearing: list[Step]
    twin: dict[str, Any]
    stats: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


def tele(at_s: float, **data: Any) -> Step:
    return Step(TELEMETRY, "telemetry", data, at_s)


def ev(at_s: float, type_: str, **data: Any) -> Step:
    return Step(EVENTS, type_, data, at_s)


GATE_T = {"door": "closed", "people_in": 3, "people_out": 0, "avg_entry_ms": 3000}
CAB_T = {
    "stock": [10, 4],
    "humidity_pct": 40.0,
    "band_min_c": 2.0,
    "band_max_c": 8.0,
    "door": "closed",
    "cooler": "ok",
}
BOOK_T = {"capacity": 40, "noise_db": 35.0, "temperature_c": 22.0, "open": True, "lights": True}
SERVICE_T = {"avg_wait_s": 120, "kiosks": [], "counters_open": 2, "counters": 4}
SCHOOL_T = {"present": 1, "arrived_today": 1, "departed_today": 0}
STEREO_T = {"paired_count": 0, "quiet_hours": {"start": "22:00", "end": "07:00"}}

SCRIPTS = [
    Script(
        "gate",
        "gate-north",
        "tailgating",
        [
            ev(0, "entry-granted", method="card", duration_ms=2000),
            ev(1, "entry-granted", method="face", resident=R1, score=0.95, duration_ms=2500),
            ev(2, "entry-granted", method="qr", duration_ms=4500),
            ev(10, "tailgating", extra_people=1),
        ],
        [tele(1900, **GATE_T)],  # past the rule's 1,800 quiet seconds (contracts/kinds/gate.py)
        {"people_in": 3},
        {"entries": 3, "entries-within-3s": 2},
    ),
    Script(
        "medicine-cabinet",
        "cabinet-civic-centre",
        "cold-chain-high",
        [
            ev(0, "medicine-dispensed", slot=1, sku="amoxicillin-250", quantity=1, resident=R1),
            ev(5, "medicine-dispensed", slot=2, sku="ibuprofen-200", quantity=2, resident=R2),
            tele(10, temperature_c=9.5, **CAB_T),
            tele(400, temperature_c=10.0, **CAB_T),
        ],
        [tele(500, temperature_c=5.0, **CAB_T)],
        {"temperature_c": 5.0},
        {"dispensed": 2},
    ),
    Script(
        "book-house",
        "book-house-lijia",
        "over-capacity",
        [
            ev(0, "book-borrowed", book_id="bk-000123", resident=R1, due_date="2026-12-31"),
            tele(10, occupancy=40, free_seats=0, **BOOK_T),
        ],
        [tele(60, occupancy=30, free_seats=10, **BOOK_T)],
        {"occupancy": 30},
        {"borrowed": 1, "readers": 30},
    ),
    Script(
        "service-centre",
        "service-centre-lijia",
        "kiosk-fault",
        [
            ev(0, "ticket-served", ticket="A001", counter=1, wait_s=120),
            ev(5, "kiosk-fault", kiosk=1, reason="paper-jam"),
        ],
        [
            ev(305, "kiosk-recovered", kiosk=1, down_s=300, by="technician"),
            tele(310, queue_length=3, **SERVICE_T),
        ],
        {"queue_length": 3},
        {"served": 1, "queue": 3},
    ),
    Script(
        "school",
        "school-lijia-experimental",
        "school-lockdown",
        [ev(0, "student-arrived", student=R1), tele(5, gate="locked", **SCHOOL_T)],
        [tele(60, gate="open", **SCHOOL_T)],
        {"gate": "open"},
        {"arrivals": 1},
    ),
    Script(
        "stereo",
        "stereo-lijia-garden-square",
        "quiet-hours-violation",
        [
            ev(0, "track-started", genre="square-dance", duration_s=200, volume=60),
            ev(
                5,
                "quiet-hours-violation",
                volume=60,
                limit=35,
                quiet_hours={"start": "22:00", "end": "07:00"},
            ),
        ],
        [tele(1900, playing=False, volume=30, **STEREO_T)],
        {"playing": False},
        {"tracks": 1},
    ),
    Script(
        "property-app",
        "property-app-lijia-garden",
        "request-overdue",
        [
            ev(
                0,
                "request-created",
                request_id="req-0001",
                category="repair",
                resident=R1,
                due=(T0 + timedelta(minutes=10)).isoformat(),
            ),
            tele(700, open_requests=1, overdue_requests=1, avg_resolution_min=0),
        ],
        [
            ev(900, "request-resolved", request_id="req-0001", resolution_min=15, on_time=False),
            tele(905, open_requests=0, overdue_requests=0, avg_resolution_min=15),
        ],
        {"open_requests": 0},
        {"requests": 1, "open-requests": 0},
    ),
]


def alarms_for(backend: BackendProcess, device: str, rule: str) -> list[dict[str, Any]]:
    return [a for a in backend.get("/alarms", status="all", device_id=device) if a["rule"] == rule]


def play(dev: DeviceClient, steps: list[Step]) -> None:
    for step in steps:
        env = dev.envelope(step.type, step.data, ts=T0 + timedelta(seconds=step.at_s))
        dev.send(env, step.channel)


def run_script(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials, script: Script
) -> None:
    device, rule = script.device, script.rule
    dev = DeviceClient(broker.port, device, creds.devices[device], script.kind)
    play(dev, script.raising)
    raised = wait_until(lambda: alarms_for(backend, device, rule))
    assert [a["status"] for a in raised] == ["active"], (script.kind, raised)
    play(dev, script.clearing)
    dev.close()
    cleared = wait_until(
        lambda: [a for a in alarms_for(backend, device, rule) if a["status"] == "cleared"]
    )
    assert len(cleared) == 1 and cleared[0]["cleared_by"] == "system", script.kind
    twin = backend.get(f"/devices/{device}")["telemetry"]
    assert {k: twin.get(k) for k in script.twin} == script.twin, script.kind


def test_seven_kinds_twin_alarm_raised_and_cleared_and_stats(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    assert {s.kind for s in SCRIPTS} == {d.kind for d in load_fleet().devices}
    for script in SCRIPTS:
        run_script(broker, backend, creds, script)
    assert backend.health()["dead_lettered"] == 0, backend.get("/dead-letters")
    figures = {
        (f["kind"], f["name"]): f["value"]
        for f in backend.get("/stats", day=DAY.isoformat())["figures"]
    }
    for script in SCRIPTS:
        for name, value in script.stats.items():
            assert figures[(script.kind, name)] == value, (script.kind, name)


def test_alarm_lifecycle_by_operator_and_no_flood(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-south", creds.devices["gate-south"])
    dev.send(dev.envelope("tailgating", {"extra_people": 1}))
    alarm = wait_until(lambda: alarms_for(backend, "gate-south", "tailgating"))[0]
    ack = backend.post(f"/alarms/{alarm['id']}/acknowledge", {"by": "li.wei", "comment": "on it"})
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "li.wei"
    assert ack.json()["acknowledged_at"] is not None
    assert backend.post(f"/alarms/{alarm['id']}/acknowledge", {}).status_code == 409
    # The same condition again: the open alarm counts it, no second alarm.
    dev.send(dev.envelope("tailgating", {"extra_people": 2}))
    wait_until(lambda: alarms_for(backend, "gate-south", "tailgating")[0]["occurrences"] == 2)
    assert len(alarms_for(backend, "gate-south", "tailgating")) == 1
    note = backend.post(f"/alarms/{alarm['id']}/comments", {"by": "li.wei", "text": "guard sent"})
    assert note.status_code == 201
    cleared = backend.post(f"/alarms/{alarm['id']}/clear", {"by": "zhao.min", "comment": "ok"})
    body = cleared.json()
    assert body["status"] == "cleared" and body["cleared_by"] == "zhao.min"
    assert [(n["action"], n["author"]) for n in body["notes"]] == [
        ("raised", "system"),
        ("acknowledged", "li.wei"),
        ("comment", "li.wei"),
        ("cleared", "zhao.min"),
    ]
    # Once cleared, a new occurrence opens a new alarm.
    dev.send(dev.envelope("tailgating", {"extra_people": 1}))
    dev.close()
    wait_until(lambda: len(alarms_for(backend, "gate-south", "tailgating")) == 2)
    assert backend.get("/devices", alarm=True)["data"][0]["device_id"] == "gate-south"


def test_burst_of_denials_raises_one_alarm(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    for i in range(7):
        data = {"method": "face", "reason": "unknown-face", "score": 0.3}
        dev.send(dev.envelope("entry-denied", data, ts=T0 + timedelta(seconds=i)))
    dev.close()
    alarm = wait_until(lambda: alarms_for(backend, "gate-east", "repeated-denials"))
    wait_until(lambda: alarms_for(backend, "gate-east", "repeated-denials")[0]["occurrences"] == 3)
    assert len(alarm) == 1


def test_sequence_gap_reported_for_the_right_device_and_count(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    sent = []
    for seq in (0, 1, 2, 6, 7, 9):  # 3, 4, 5 and 8 are "lost"
        dev.seq = seq
        sent.append(dev.send(dev.envelope()).event_id)
    dev.close()
    wait_until(lambda: set(sent) <= set(backend.event_ids()))
    quality = backend.get("/quality")
    assert quality["missing_total"] == 4
    [gaps] = quality["sequence_gaps"]
    assert gaps["device_id"] == "gate-east" and gaps["missing"] == 4
    assert [(g["after_seq"], g["before_seq"]) for g in gaps["gaps"]] == [(2, 6), (7, 9)]
    assert 'lijia_sequence_missing{device_id="gate-east"} 4.0' in backend_metrics(backend)


def backend_metrics(backend: BackendProcess) -> str:
    import httpx

    return httpx.get(backend.url + "/metrics").text


@pytest.fixture
def quick_backend(
    broker: BrokerProcess, creds_dir: Path, database_url: str, tmp_path: Path
) -> Iterator[BackendProcess]:
    env = {"LIJIA_OFFLINE_ALARM_AFTER_S": "1", "LIJIA_SILENT_AFTER_S": "2"}
    yield from own_backend(broker, creds_dir, database_url, tmp_path / "quick", env)


def test_availability_offline_alarm_and_silence(
    broker: BrokerProcess, quick_backend: BackendProcess, creds: Credentials
) -> None:
    backend = quick_backend
    dev = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    state = "lijia/gate/gate-north/state"
    dev.publish_raw(state, json.dumps({"status": "offline", "reason": "last-will"}).encode(), True)
    wait_until(lambda: alarms_for(backend, "gate-north", "device-offline"))
    device = backend.get("/devices/gate-north")
    assert (device["availability"], device["availability_reason"]) == ("offline", "last-will")
    dev.publish_raw(state, json.dumps({"status": "online", "reason": "connected"}).encode(), True)
    wait_until(
        lambda: alarms_for(backend, "gate-north", "device-offline")[0]["status"] == "cleared"
    )
    dev.send(dev.envelope())
    dev.close()
    # Online but silent for longer than LIJIA_SILENT_AFTER_S: offline, reason "silent".
    wait_until(lambda: backend.get("/devices/gate-north")["availability_reason"] == "silent")


def test_retention_purges_personal_events_and_keeps_aggregates(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    provision(engine, load_fleet())
    old, recent = datetime.now(UTC) - timedelta(days=40), datetime.now(UTC)

    def item(n: int, ts: datetime, type_: str, data: dict[str, Any]) -> Incoming:
        body = {
            "version": 1,
            "event_id": f"ret-{n}",
            "device_id": "gate-north",
            "kind": "gate",
            "type": type_,
            "seq": n,
            "ts": ts.isoformat(),
            "data": data,
        }
        return Incoming("lijia/gate/gate-north/events", json.dumps(body).encode(), recent)

    granted = {"method": "face", "resident": R1, "score": 0.9, "duration_ms": 2000}
    batch = [
        item(1, old, "entry-granted", granted),
        item(2, old, "tailgating", {}),
        item(3, recent, "entry-granted", granted),
    ]
    write_batch(engine, Registry(engine), batch)
    assert purge_personal(engine, retention_days=30) == 1
    with engine.connect() as conn:
        left = {r.event_id for r in conn.execute(table(Event).select())}
        stats = conn.execute(table(StatHourly).select()).mappings().all()
        kept = sum(int(r["count"]) for r in stats if r["stat"] == "entries")
    assert left == {"ret-2", "ret-3"}  # the old personal event is gone, the rest stays
    assert kept == 2  # the hourly aggregate still counts both entries
    engine.dispose()
