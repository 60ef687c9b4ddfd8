"""The Streamlit console (ui/) driven by AppTest against a real backend and a real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from stack.credentials import Credentials
from stack.ports import free_port
from tests.helpers import API_KEY, READ_KEY, ROOT, BackendProcess, DeviceClient, wait_until

pytestmark = pytest.mark.integration

APP = ROOT / "ui" / "streamlit_app.py"  # absolute: AppTest resolves relative paths from the caller
INJECT_PAGE = "app_pages/inject.py"  # relative to the main script
TIMEOUT = 20  # seconds per AppTest run; the inject page waits for ingest (up to 10 s)


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
def gate(broker, creds: Credentials) -> Iterator[DeviceClient]:
    device = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    yield device
    device.close()


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_street_page_shows_devices_availability_and_live_events(
    console_env: BackendProcess, gate: DeviceClient
) -> None:
    backend = console_env
    gate.send(gate.envelope("entry-granted", {"method": "card", "duration_ms": 1500}))
    gate.send(gate.envelope("entry-denied", {"method": "face", "reason": "unknown-face"}))
    gate.publish_raw(
        "lijia/gate/gate-north/state",
        json.dumps({"status": "online", "reason": "connected"}).encode(),
        retain=True,
    )
    wait_until(lambda: len(backend.get("/events", device_id="gate-north")["data"]) == 2)
    wait_until(lambda: backend.get("/devices/gate-north")["availability"] == "online")

    at = app().run()

    assert not at.exception, at.exception
    assert not at.error, errors(at)
    assert not at.warning, [w.value for w in at.warning]  # e.g. a deprecated argument
    assert at.title[0].value == "Lijia Street · 礼嘉街道"
    metrics = {m.label: m.value for m in at.metric}
    n_devices = backend.get("/devices")["count"]
    assert metrics["Devices online · 在线设备"] == f"1 / {n_devices}"
    assert metrics["Latest events · 最新事件"] == "2"

    devices, events = (df.value for df in at.dataframe)
    assert len(devices) == n_devices
    north = devices.set_index("device").loc["gate-north"]
    assert north["availability"] == "🟢 online" and north["why"] == "connected"
    assert north["name"] == "North Gate, Lijia Garden · 礼嘉花园北门"
    others = devices[devices["device"] != "gate-north"]
    assert set(others["availability"]) == {"⚪ unknown"}

    assert list(events["type"]) == ["entry-denied", "entry-granted"]  # newest first
    assert set(events["device"]) == {"gate-north"}
    assert set(events["injected"]) == {""}
    assert "reason=unknown-face" in events["details"].iloc[0]


def test_street_page_without_events_says_so(console_env: BackendProcess) -> None:
    at = app().run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == ["No events yet. · 暂无事件"]
    assert len(at.dataframe) == 1  # the devices, no event feed


def test_inject_page_publishes_an_injected_event(console_env: BackendProcess) -> None:
    backend = console_env
    at = app().run()
    at.switch_page(INJECT_PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Inject an event · 注入事件"

    at.selectbox(key="inject.device").select("gate-south").run()
    at.selectbox(key="inject.type").select("tailgating").run()
    at.number_input(key="gate-south.tailgating.extra_people").set_value(3)
    at.button(key="inject.submit").click().run()

    assert not at.exception, at.exception
    assert not at.error, errors(at)
    assert not at.warning, [w.value for w in at.warning]  # "Not stored yet"
    successes = [s.value for s in at.success]
    assert successes[0].startswith("Published as event ")
    assert "lijia/gate/gate-south/events" in successes[0]
    assert successes[1] == "Stored by the backend · 已入库"
    event_id = successes[0].removeprefix("Published as event ").split()[0]

    stored = wait_until(lambda: backend.get("/events", injected=True)["data"])
    assert [e["event_id"] for e in stored] == [event_id]
    event = stored[0]
    assert event["injected"] is True
    assert event["device_id"] == "gate-south" and event["type"] == "tailgating"
    assert event["data"] == {"extra_people": 3}
    assert backend.get("/events", injected=False)["data"] == []


def test_inject_refused_by_backend_shows_an_error(
    console_env: BackendProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIJIA_API_KEY", READ_KEY)  # may read devices, may not inject
    at = app().run()
    at.switch_page(INJECT_PAGE).run()
    at.button(key="inject.submit").click().run()

    assert not at.exception, at.exception
    assert not at.success
    [message] = errors(at)
    assert "refused the request (403)" in message and "'operate' is needed" in message
    assert console_env.get("/events", injected=True)["data"] == []


@pytest.mark.parametrize("page", [None, INJECT_PAGE])
def test_backend_unreachable_shows_an_error(
    page: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("LIJIA_API_URL", url)
    monkeypatch.setenv("LIJIA_API_KEY", API_KEY)
    at = app().run()
    if page:
        at.switch_page(page).run()

    assert not at.exception, at.exception
    assert errors(at) == [f"The backend at {url} cannot be reached. · 无法连接后端"]
    assert not at.dataframe and not at.selectbox
