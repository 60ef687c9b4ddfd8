"""The Streamlit console (ui/) driven by AppTest against a real backend and a real Mosquitto:
every page, with data, in both languages, and with the backend unreachable or refusing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from adapters.credentials import Credentials
from contracts.catalogue import get_kind
from contracts.envelope import TELEMETRY_TYPE
from contracts.topics import Channel
from contracts.validation import validate_data
from stack.broker import BrokerProcess
from stack.ports import free_port
from stack.processes import (
    API_KEY,
    READ_KEY,
    ROOT,
    BackendProcess,
    devices_command,
    stop_child,
    wait_until,
)
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

APP = ROOT / "ui" / "streamlit_app.py"  # absolute: AppTest resolves relative paths from the caller
PAGES = {  # relative to the main script
    "overview": "app_pages/overview.py",
    "devices": "app_pages/devices.py",
    "events": "app_pages/events.py",
    "alarms": "app_pages/alarms.py",
    "inject": "app_pages/inject.py",
    "quality": "app_pages/quality.py",
}
TIMEOUT = 20  # seconds per AppTest run; the inject page waits for ingest (up to 10 s)
GATE_TELEMETRY = {"door": "closed", "people_in": 12, "people_out": 7, "avg_entry_ms": 2300}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database is the backend's concern, not the console's."""
    return f"sqlite:///{tmp_path / 'lijia.db'}"


@pytest.fixture
def console_env(backend: BackendProcess, monkeypatch: pytest.MonkeyPatch) -> BackendProcess:
    monkeypatch.setenv("LIJIA_API_URL", backend.url)
    monkeypatch.setenv("LIJIA_API_KEY", API_KEY)
    return backend


@pytest.fixture
def gate(broker: BrokerProcess, creds: Credentials) -> Iterator[DeviceClient]:
    device = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    yield device
    device.close()


@pytest.fixture
def simulated_gate(
    broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The real simulated South Gate, which answers commands."""
    with (tmp_path / "devices.log").open("ab") as log:
        proc = subprocess.Popen(
            devices_command(broker.port, creds_dir, "--only", "gate-south"),
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield proc
    stop_child(proc, signal.SIGTERM, timeout=10)


def app(page: str | None = None, lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if lang:
        at.segmented_control(key="lang").set_value(lang).run()
    if page:
        at.switch_page(PAGES[page]).run()
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def assert_clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, errors(at)


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


def chart_frames(chart: Any) -> list[Any]:
    """The data sets of a rendered Altair chart, as pandas frames."""
    return [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


def map_devices(at: AppTest) -> Any:
    """The devices placed on the street map (the largest of its device layers: the other one is
    the halo around devices with an alarm)."""
    layers = [f for c in charts(at) for f in chart_frames(c) if "device_id" in f.columns]
    assert layers, "no street map on the page"
    return max(layers, key=len).set_index("device_id")


def inject(backend: BackendProcess, device_id: str, type_: str, data: dict[str, Any]) -> str:
    resp = backend.post("/events/inject", {"device_id": device_id, "type": type_, "data": data})
    assert resp.status_code == 202, resp.text
    event_id: str = resp.json()["event_id"]
    wait_until(lambda: backend.get("/events", injected=True, type=type_)["data"])
    return event_id


def open_alarm(backend: BackendProcess, device_id: str, rule: str) -> dict[str, Any]:
    alarms: list[dict[str, Any]] = wait_until(
        lambda: [a for a in backend.get("/alarms", device_id=device_id) if a["rule"] == rule]
    )
    return alarms[0]


# -- overview ---------------------------------------------------------------------------------
def test_overview_shows_todays_figures_the_map_and_hourly_activity(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    gate.send(gate.envelope("entry-granted", {"method": "face", "duration_ms": 1800}))
    gate.send(gate.envelope("entry-granted", {"method": "card", "duration_ms": 4200}))
    gate.publish_raw(
        "lijia/gate/gate-north/state",
        json.dumps({"status": "online", "reason": "connected"}).encode(),
        retain=True,
    )
    inject(backend, "gate-south", "tailgating", {"extra_people": 2})
    wait_until(lambda: backend.get("/devices/gate-north")["availability"] == "online")
    stats = wait_until(lambda: (s := backend.get("/stats"))["hourly"] and s)
    labels = {(f["kind"], f["name"]): f["label_en"] for f in stats["figures"]}

    at = app()

    assert_clean(at)
    assert at.title[0].value == "Lijia Street"
    assert f"Today on the street · {stats['day']}" in [s.value for s in at.subheader]
    metrics = {m.label: m for m in at.metric}
    assert metrics["Open alarms"].value == "1"
    assert metrics[labels[("gate", "entries")]].value == "2"
    text = markdown(at)
    assert f"Devices online **1 / {stats['devices_total']}**" in text
    # A figure that narrows another shows its share: one of the two entries took under 3 s.
    assert f"{labels[('gate', 'entries-within-3s')]} **1** · :gray[50%]" in text
    assert "**Tailgating**" in text  # the open alarm, its title in the chosen language

    placed = map_devices(at)
    assert len(placed) == stats["devices_total"]
    assert placed.loc["gate-north", "state"] == "OK"
    assert placed.loc["gate-south", "state"] == "Open alarm"
    assert set(placed.drop(["gate-north", "gate-south"])["state"]) == {"Not seen yet"}
    assert placed.loc["gate-north", "name"] == "North Gate, Lijia Garden"
    assert placed.loc["gate-north", "other_name"] == "礼嘉花园北门"
    assert (placed.loc["gate-north", "x"], placed.loc["gate-north", "y"]) == (220, 120)

    [hourly] = [
        f
        for c in charts(at)
        for f in chart_frames(c)
        if "figure" in f.columns and set(f["kind"]) == {"gate"}
    ]
    assert hourly.groupby("figure")["count"].sum().to_dict() == {
        labels[("gate", "entries")]: 2,
        labels[("gate", "entries-within-3s")]: 1,
    }


def test_overview_in_chinese(console_env: BackendProcess) -> None:
    at = app(lang="zh")
    assert_clean(at)
    assert at.title[0].value == "礼嘉街道"
    labels = {m.label for m in at.metric}
    assert "未处理告警" in labels
    assert {f["label_zh"] for f in console_env.get("/stats")["figures"]} & labels
    placed = map_devices(at)
    assert placed.loc["gate-north", "name"] == "礼嘉花园北门"
    assert placed.loc["gate-north", "state"] == "未上线"
    assert [i.value for i in at.info] == ["今天尚无统计。"]


# -- devices ----------------------------------------------------------------------------------
def test_devices_table_filters_by_kind_availability_and_alarm(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    gate.publish_raw(
        "lijia/gate/gate-north/state",
        json.dumps({"status": "online", "reason": "connected"}).encode(),
        retain=True,
    )
    inject(backend, "gate-east", "tailgating", {"extra_people": 1})
    open_alarm(backend, "gate-east", "tailgating")
    wait_until(lambda: backend.get("/devices/gate-north")["availability"] == "online")
    n_gates = backend.get("/devices", kind="gate")["count"]

    at = app("devices")
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) == backend.get("/devices")["count"]

    at.selectbox(key="devices.kind").select("gate").run()
    table = at.dataframe[0].value
    assert len(table) == n_gates and set(table["Kind"]) == {"Face-recognition gate"}

    at.selectbox(key="devices.availability").select("online").run()
    assert list(at.dataframe[0].value["Device id"]) == ["gate-north"]

    at.selectbox(key="devices.availability").select("").run()
    at.selectbox(key="devices.alarm").select("true").run()
    table = at.dataframe[0].value.set_index("Device id")
    assert list(table.index) == ["gate-east"]
    assert table.loc["gate-east", "Open alarms"] == "🟠 major ×1"

    at.selectbox(key="devices.kind").select("stereo").run()
    assert_clean(at)
    assert [i.value for i in at.info] == ["No device matches these filters."]


def test_device_page_shows_twin_telemetry_events_and_alarms(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    for people_in in (10, 12):
        data = {**GATE_TELEMETRY, "people_in": people_in}
        gate.send(gate.envelope(TELEMETRY_TYPE, data, Channel.TELEMETRY), Channel.TELEMETRY)
    gate.send(gate.envelope("entry-denied", {"method": "face", "reason": "unknown-face"}))
    gate.send(gate.envelope("tailgating", {"extra_people": 3}))
    open_alarm(backend, "gate-north", "tailgating")
    wait_until(lambda: backend.get("/devices/gate-north")["telemetry"].get("people_in") == 12)

    at = app("devices")
    at.selectbox(key="devices.selected").select("gate-north").run()
    assert_clean(at)
    assert "North Gate, Lijia Garden" in [s.value for s in at.subheader]

    frames = {tuple(df.value.columns): df.value for df in at.dataframe}
    twin = frames[("Field", "Value")].set_index("Field")["Value"]
    assert twin["people_in"] == "12" and twin["door"] == "closed"
    events = frames[("Time", "Event", "Injected", "Details")]
    assert list(events["Event"]) == ["tailgating", "entry-denied"]
    assert "reason=unknown-face" in events["Details"].iloc[1]

    # Telemetry: one chart per numeric field of the kind's schema, from the series endpoint.
    numeric = ["people_in", "people_out", "avg_entry_ms"]
    assert at.multiselect(key="devices.fields.gate").value == numeric
    titled = {json.loads(c.proto.spec)["title"]["text"]: c for c in charts(at)}
    assert set(titled) == set(numeric)
    [series] = chart_frames(titled["people_in"])
    assert series["max"].max() == 12 and series["min"].min() == 10

    assert "**Tailgating** · active" in markdown(at)


def test_device_command_is_followed_until_it_succeeds(
    console_env: BackendProcess, simulated_gate: subprocess.Popen[bytes]
) -> None:
    backend = console_env
    wait_until(lambda: backend.get("/devices/gate-south")["availability"] == "online", 30)

    at = app("devices")
    at.selectbox(key="devices.selected").select("gate-south").run()
    assert at.selectbox(key="devices.cmd.gate-south").options == list(get_kind("gate").commands)
    at.selectbox(key="devices.cmd.gate-south").select("lock-down").run()
    at.text_input(key="cmd.gate-south.lock-down.reason").input("drill")
    at.button(key="devices.send").click().run()
    assert_clean(at)

    def done() -> bool:
        at.run()
        return any("Command lock-down: succeeded" in s.value for s in at.success)

    wait_until(done, timeout=20, interval=0.3)
    assert_clean(at)
    [command] = backend.get("/commands", device_id="gate-south")
    assert command["name"] == "lock-down" and command["params"] == {"reason": "drill"}
    assert command["status"] == "succeeded"
    recent = next(df.value for df in at.dataframe if "Command" in df.value.columns)
    assert recent.iloc[0]["Status"] == "succeeded"


def test_device_command_refused_by_the_backend_shows_an_error(
    console_env: BackendProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIJIA_API_KEY", READ_KEY)
    at = app("devices")
    at.button(key="devices.send").click().run()
    assert not at.exception, at.exception
    [message] = errors(at)
    assert "refused the request (403)" in message
    assert console_env.get("/commands") == []


# -- events -----------------------------------------------------------------------------------
def test_events_feed_filters_and_csv_download(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    gate.send(gate.envelope("entry-granted", {"method": "card", "duration_ms": 1500}))
    gate.send(gate.envelope("entry-denied", {"method": "face", "reason": "unknown-face"}))
    injected = inject(backend, "gate-south", "tailgating", {"extra_people": 2})
    wait_until(lambda: len(backend.get("/events")["data"]) == 3)

    at = app("events")
    assert_clean(at)
    feed = at.dataframe[0].value
    assert list(feed["Event"]) == ["tailgating", "entry-denied", "entry-granted"]
    assert list(feed["Injected"]) == ["💉", "", ""]
    assert feed["Device"].iloc[0] == "South Gate, Lijia Garden"
    assert at.get("download_button")[0].proto.label == "Download CSV"

    at.selectbox(key="events.injected").select("true").run()
    assert list(at.dataframe[0].value["Event"]) == ["tailgating"]
    at.selectbox(key="events.injected").select("false").run()
    at.selectbox(key="events.type").select("entry-denied").run()
    assert list(at.dataframe[0].value["Details"]) == ["method=face, reason=unknown-face"]

    at.selectbox(key="events.type").select("").run()
    at.selectbox(key="events.injected").select("").run()
    at.selectbox(key="events.kind").select("gate").run()
    at.selectbox(key="events.device").select("gate-south").run()
    assert list(at.dataframe[0].value["Event"]) == ["tailgating"]

    at.selectbox(key="events.kind").select("stereo").run()  # the device list follows the kind
    assert_clean(at)
    assert [i.value for i in at.info] == ["No events match these filters yet."]
    assert at.selectbox(key="events.device").value == ""
    at.selectbox(key="events.kind").select("").run()
    at.selectbox(key="events.range").select("15m").run()
    assert len(at.dataframe[0].value) == 3
    assert injected  # the CSV download itself is checked in a real browser (test_browser.py)


def test_events_time_range_excludes_older_events(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    old = datetime.now(UTC) - timedelta(hours=2)
    gate.send(gate.envelope("entry-granted", {"method": "pin", "duration_ms": 900}, ts=old))
    gate.send(gate.envelope("entry-granted", {"method": "card", "duration_ms": 1500}))
    wait_until(lambda: len(backend.get("/events")["data"]) == 2)

    at = app("events")
    at.selectbox(key="events.range").select("1h").run()
    assert list(at.dataframe[0].value["Details"].str.contains("method=card")) == [True]
    at.selectbox(key="events.range").select("all").run()
    assert len(at.dataframe[0].value) == 2


# -- alarms -----------------------------------------------------------------------------------
def test_alarms_acknowledge_and_clear_with_comment_and_history(
    console_env: BackendProcess,
) -> None:
    backend = console_env
    inject(backend, "gate-south", "tailgating", {"extra_people": 2})
    alarm = open_alarm(backend, "gate-south", "tailgating")
    aid = alarm["id"]

    at = app()
    at.text_input(key="operator").input("Li Wei").run()
    at.switch_page(PAGES["alarms"]).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["🟠 major"] == "1"
    assert "🟠 **Tailgating**" in markdown(at)

    at.text_input(key=f"alarms.{aid}.comment").input("guard on the way")
    at.button(key=f"alarms.{aid}.acknowledge").click().run()
    assert_clean(at)
    assert [s.value for s in at.success] == [f"Alarm {aid} acknowledged by Li Wei."]
    acked = backend.get(f"/alarms/{aid}")
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "Li Wei"
    assert acked["notes"][-1]["text"] == "guard on the way"
    assert at.button(key=f"alarms.{aid}.acknowledge").disabled

    at.text_input(key=f"alarms.{aid}.comment").input("CCTV checked")
    at.button(key=f"alarms.{aid}.note").click().run()
    assert backend.get(f"/alarms/{aid}")["notes"][-1]["text"] == "CCTV checked"

    at.text_input(key=f"alarms.{aid}.comment").input("resident's guest, registered")
    at.button(key=f"alarms.{aid}.clear").click().run()
    assert_clean(at)
    cleared = backend.get(f"/alarms/{aid}")
    assert cleared["status"] == "cleared" and cleared["cleared_by"] == "Li Wei"
    assert (
        "No open alarms. All quiet." in [s.value for s in at.success] + [s.value for s in at.info]
        or not at.button
    )

    history = next(df.value for df in at.dataframe if "Acknowledged" in df.value.columns)
    row = history.set_index("#").loc[aid]
    assert row["Status"] == "cleared" and row["Acknowledged"].startswith("Li Wei · ")
    assert row["Cleared"].startswith("Li Wei · ") and row["Reason"] == "operator"
    at.selectbox(key="alarms.notes_of").select(aid).run()
    notes = next(df.value for df in at.dataframe if "Action" in df.value.columns)
    assert list(notes["Action"]) == ["raised", "acknowledged", "comment", "cleared"]
    assert list(notes["By"]) == ["system", "Li Wei", "Li Wei", "Li Wei"]
    assert list(notes["Comment"])[1:] == [
        "guard on the way",
        "CCTV checked",
        "resident's guest, registered",
    ]


def test_alarm_action_refused_shows_the_reason(
    console_env: BackendProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = console_env
    inject(backend, "gate-south", "tailgating", {"extra_people": 1})
    aid = open_alarm(backend, "gate-south", "tailgating")["id"]
    at = app("alarms")
    # Someone else clears it meanwhile: the console says why its click did nothing.
    backend.post(f"/alarms/{aid}/clear", {"by": "zhao.min"})
    at.button(key=f"alarms.{aid}.clear").click().run()
    assert not at.exception, at.exception
    assert errors(at) == ["The backend refused the request (409): alarm is already cleared"]


# -- inject -----------------------------------------------------------------------------------
def test_one_click_tailgating_shows_the_event_stored_and_the_alarm_raised(
    console_env: BackendProcess,
) -> None:
    backend = console_env
    at = app("inject")
    assert_clean(at)
    assert at.title[0].value == "Inject an event"
    at.selectbox(key="inc.tailgating.device").select("gate-east").run()
    at.button(key="inc.tailgating.go").click().run()

    assert_clean(at)
    published, stored = (s.value for s in at.success)
    assert published.startswith("Published as event ")
    assert "lijia/gate/gate-east/events" in published
    assert stored == "Stored by the backend"
    [alarm] = backend.get("/alarms", device_id="gate-east")
    assert [w.value for w in at.warning] == [
        f"#{alarm['id']} · Alarm raised: Tailgating (🟠 major) on East Gate, Tianyue Residence"
    ]
    [event] = backend.get("/events", injected=True)["data"]
    assert event["event_id"] in published
    assert event["type"] == "tailgating" and event["data"] == {"extra_people": 2}


def test_one_click_crash_takes_the_simulated_gate_off_by_its_last_will(
    console_env: BackendProcess, simulated_gate: subprocess.Popen[bytes]
) -> None:
    """The crash card starts a drill on the running simulator: the South Gate's link goes
    without a goodbye, the broker publishes its Last Will; a minute later it is back."""
    backend = console_env
    wait_until(lambda: backend.get("/devices/gate-south")["availability"] == "online", 30)
    at = app("inject")
    at.selectbox(key="inc.crash.device").select("gate-south").run()
    at.button(key="inc.crash.go").click().run()
    assert_clean(at)
    [started] = [s.value for s in at.success]
    assert started.startswith("Crash drill started (run run-")
    twin = wait_until(
        lambda: (d := backend.get("/devices/gate-south"))["availability"] == "offline" and d, 20
    )
    assert twin["availability_reason"] == "last-will"
    [run] = [r for r in backend.get("/scenarios/runs") if r["name"] == "device-crash"]
    assert run["run_id"] in started


def test_one_click_cooler_failure_injects_both_events(console_env: BackendProcess) -> None:
    backend = console_env
    at = app("inject")
    at.selectbox(key="inc.cooler.device").select("cabinet-tianyue").run()
    at.button(key="inc.cooler.go").click().run()
    assert_clean(at)
    events = backend.get("/events", injected=True, device_id="cabinet-tianyue")["data"]
    assert [e["type"] for e in events] == ["temperature-excursion", "cooler-fault"]
    assert [s.value for s in at.success].count("Stored by the backend") == 2
    rules = {a["rule"] for a in backend.get("/alarms", device_id="cabinet-tianyue")}
    assert "cooler-fault" in rules
    assert any("Cooler failed" in w.value for w in at.warning)


def test_incident_payloads_follow_the_contract() -> None:
    from ui.incidents import INCIDENTS

    twins: dict[str, dict[str, Any]] = {
        "gate": {},
        "medicine-cabinet": {"stock": [5, 0, 3], "band_min_c": 2.0, "band_max_c": 8.0},
    }
    for incident in INCIDENTS:
        spec = get_kind(incident.kind)
        for twin in ({}, twins[incident.kind]):
            for type_, data in incident.events({"telemetry": twin}):
                validate_data(spec, Channel.EVENTS, type_, data)  # raises if invalid


def test_inject_form_publishes_an_injected_event_without_alarm(
    console_env: BackendProcess,
) -> None:
    backend = console_env
    at = app("inject")
    at.selectbox(key="inject.device").select("gate-south").run()
    at.selectbox(key="inject.type").select("entry-denied").run()
    at.selectbox(key="gate-south.entry-denied.reason").select("blocklisted")
    at.button(key="inject.submit").click().run()

    assert_clean(at)
    assert not at.warning, [w.value for w in at.warning]  # "Not stored yet"
    assert [s.value for s in at.success][1] == "Stored by the backend"
    assert [i.value for i in at.info] == ["No alarm raised by this event."]
    [event] = backend.get("/events", injected=True)["data"]
    assert event["device_id"] == "gate-south" and event["type"] == "entry-denied"
    assert event["data"] == {"method": "face", "reason": "blocklisted"}
    assert backend.get("/events", injected=False)["data"] == []


def test_inject_raw_json(console_env: BackendProcess) -> None:
    backend = console_env
    at = app("inject")
    body = {"device_id": "gate-north", "type": "door-held-open", "data": {"seconds": 95}}
    at.text_area(key="inject.raw").input(json.dumps(body)).run()
    at.button(key="inject.raw_submit").click().run()
    assert_clean(at)
    [event] = backend.get("/events", injected=True)["data"]
    assert event["type"] == "door-held-open" and event["data"] == {"seconds": 95}
    assert any("Door held open" in w.value for w in at.warning)

    at.text_area(key="inject.raw").input("{not json").run()
    at.button(key="inject.raw_submit").click().run()
    [message] = errors(at)
    assert message.startswith("This is not a JSON object:")

    at.text_area(key="inject.raw").input(json.dumps({**body, "data": {"seconds": 0}})).run()
    at.button(key="inject.raw_submit").click().run()
    [message] = errors(at)
    assert "refused the request (422)" in message
    assert len(backend.get("/events", injected=True)["data"]) == 1


def test_inject_refused_by_backend_shows_an_error(
    console_env: BackendProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIJIA_API_KEY", READ_KEY)  # may read devices, may not inject
    at = app("inject")
    at.button(key="inject.submit").click().run()

    assert not at.exception, at.exception
    assert not at.success
    [message] = errors(at)
    assert "refused the request (403)" in message and "'operate' is needed" in message
    assert console_env.get("/events", injected=True)["data"] == []


# -- data quality -----------------------------------------------------------------------------
def test_quality_page_shows_gaps_dead_letters_and_broker(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    gate.send(gate.envelope())  # seq 0
    gate.seq = 3  # 1 and 2 never arrive
    gate.send(gate.envelope())
    gate.publish_raw("lijia/gate/gate-north/events", b"{not json")
    wait_until(lambda: backend.get("/quality")["dead_lettered"] == 1)
    wait_until(lambda: backend.get("/quality")["missing_total"] == 2)

    at = app("quality")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Broker"] == "🟢 up" and metrics["Database"] == "🟢 up"
    assert metrics["Dead letters"] == "1" and metrics["Missing (sequence gaps)"] == "2"
    assert metrics["Ingest lag"].endswith(" s")
    assert next(s.value for s in at.success) == "Backend healthy"
    gaps = at.dataframe[0].value.set_index("Device id")
    assert gaps.loc["gate-north", "Missing"] == 2
    assert gaps.loc["gate-north", "Gaps (after → before)"] == "0 → 3"
    [reasons_chart] = charts(at)
    [reasons] = chart_frames(reasons_chart)
    reason = next(iter(backend.get("/quality")["dead_letter_reasons"]))
    assert reasons.set_index("reason").loc[reason, "count"] == 1
    recent = at.dataframe[1].value
    assert list(recent["Topic"]) == ["lijia/gate/gate-north/events"]


def test_quality_page_in_chinese(console_env: BackendProcess) -> None:
    at = app("quality", lang="zh")
    assert_clean(at)
    assert at.title[0].value == "数据质量"
    assert {m.label: m.value for m in at.metric}["消息代理"] == "🟢 正常"


# -- every page: errors as messages -----------------------------------------------------------
@pytest.mark.parametrize("page", list(PAGES))
def test_backend_unreachable_shows_an_error(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("LIJIA_API_URL", url)
    monkeypatch.setenv("LIJIA_API_KEY", API_KEY)
    at = app(page)

    assert not at.exception, at.exception
    assert errors(at) == [f"The backend at {url} cannot be reached. Is it running?"]
    assert not at.dataframe and not at.selectbox and not at.metric


def test_every_page_renders_in_both_languages(console_env: BackendProcess) -> None:
    for page in PAGES:
        english, chinese = app(page), app(page, lang="zh")
        for at in (english, chinese):
            assert_clean(at)
            assert not at.warning, [w.value for w in at.warning]
        assert english.title[0].value.isascii(), page
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.title[0].value), page
