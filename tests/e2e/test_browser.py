"""End to end in a real browser: broker, backend, the simulated fleet and the Streamlit console as
processes; headless Chromium injects a tailgating incident, finds it in the live feed and the CSV,
acknowledges the alarm it raised, and photographs every page (test-artifacts/screenshots/, copied
to docs/screenshots/ for the README)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.credentials import Credentials
from contracts.alarms import EventRule
from contracts.catalogue import get_kind
from contracts.vocabulary import STREET_TZ
from stack.broker import BrokerProcess
from stack.ports import free_port
from stack.processes import (
    API_KEY,
    ROOT,
    BackendProcess,
    Simulator,
    devices_command,
    stop_child,
    wait_until,
)
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1440, "height": 1000}
WAIT_MS = 30_000
OPERATOR = "Wang Fang"
FLEET_SPEED = "60"  # simulated seconds per real second: a lively street within the test
FEW_STREET_S = timedelta(seconds=5)


def _tailgating_quiet() -> timedelta:
    """The tailgating rule's quiet period (contracts/kinds/gate.py: clear_after_s)."""
    [rule] = [r for r in get_kind("gate").alarms if r.rule == "tailgating"]
    assert isinstance(rule, EventRule) and rule.clear_after_s
    return timedelta(seconds=rule.clear_after_s)


TAILGATING_QUIET = _tailgating_quiet()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def simulated_fleet(
    broker: BrokerProcess, backend: BackendProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(
        devices_command(broker.port, creds_dir, "--speed", FLEET_SPEED),
        tmp_path / "devices.log",
        os.environ.copy(),
    )
    yield proc
    stop_child(proc, signal.SIGTERM, timeout=15)


@pytest.fixture
def console(backend: BackendProcess, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "LIJIA_API_URL": backend.url, "LIJIA_API_KEY": API_KEY}
    proc = _spawn(
        [sys.executable, "-m", "streamlit", "run", "ui/streamlit_app.py",
         "--server.port", str(port), "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal"],
        tmp_path / "console.log",
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "console.log").read_text()[-2000:])
        try:
            return httpx.get(url + "/_stcore/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=60)
    yield url
    stop_child(proc, signal.SIGTERM, timeout=15)


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright (see the README)")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (scripts/test.sh)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def street_time(backend: BackendProcess) -> datetime:
    """GET /clock: the street's time now."""
    return datetime.fromisoformat(backend.get("/clock")["now"])


def settle(page: Any) -> None:
    """Wait until every chart on the page has been drawn and the page stopped growing (the same
    height at two polls half a second apart)."""
    page.wait_for_function(
        """() => {
            const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
            const drawn = charts.every(c => c.querySelector('canvas, svg'));
            const main = document.querySelector('[data-testid="stMainBlockContainer"]');
            const height = main ? main.scrollHeight : 0;
            const steady = drawn && window.__lijiaHeight === height;
            window.__lijiaHeight = height;
            return steady;
        }""",
        polling=500,
        timeout=WAIT_MS,
    )


def screenshot(page: Any, name: str) -> None:
    """The whole page: the viewport is stretched to the height of the main column."""
    settle(page)
    height = page.evaluate(
        """() => document.querySelector('[data-testid="stMainBlockContainer"]').scrollHeight"""
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(height, 800)})
    settle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(VIEWPORT)


def go(page: Any, label: str, heading: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=label).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=WAIT_MS)
    idle(page)


def idle(page: Any) -> None:
    """Wait until the app's script is not running (a rerun replaces widgets, and a click on a
    widget being replaced can be lost)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def choose(page: Any, key: str, option: str) -> None:
    """Pick an option of the selectbox with this widget key, and wait for the rerun it starts.
    The option's text is typed first: the dropdown draws only the rows in view, so a long list
    may not have the option in the page until it is filtered."""
    from playwright.sync_api import expect

    box = page.locator(f".st-key-{key}")
    idle(page)
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option).first.click()
    expect(box.get_by_role("combobox")).to_have_value(re.compile(re.escape(option)))
    idle(page)


def download(page: Any, button: str) -> Path:
    """Click a download button until the browser receives the file. A deferred download asks the
    app for the file by an id that each full rerun renews; a click holding the id of a rerun
    that has just been replaced gets nothing, and a person would click again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        idle(page)
        try:
            with page.expect_download(timeout=WAIT_MS // 3) as file:
                page.get_by_role("button", name=button).click()
            return Path(file.value.path())
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"three clicks on {button!r} downloaded nothing")


def test_tailgating_from_inject_to_feed_to_acknowledged_alarm(
    broker: BrokerProcess,
    creds: Credentials,
    backend: BackendProcess,
    simulated_fleet: subprocess.Popen[bytes],
    console: str,
    browser: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    total = backend.get("/devices")["count"]
    wait_until(lambda: backend.get("/stats")["devices_online"] == total, timeout=60)
    wait_until(lambda: backend.get("/stats")["hourly"], timeout=60)

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(console)

    # Overview: headline figures, the map, hourly activity.
    expect(page.get_by_role("heading", name="Lijia Street", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{total} / {total}")).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()

    # The operator's name, used for the acknowledgement below.
    operator = page.locator(".st-key-operator input")
    operator.fill(OPERATOR)
    operator.press("Enter")

    # Inject: one click stages tailgating at the first gate; the result follows it back.
    go(page, "Inject", "Inject an event")
    before = street_time(backend)
    page.locator(".st-key-inc-tailgating-go button").click()
    expect(page.get_by_text("Stored by the backend")).to_be_visible()
    raised = page.get_by_text(re.compile(r"(Alarm raised|Counted on the open alarm): Tailgating"))
    expect(raised).to_be_visible()
    after = street_time(backend)
    published = page.get_by_text(re.compile(r"^Published as event ")).inner_text()
    event_id = published.removeprefix("Published as event ").split()[0]
    event = backend.get(f"/events/{event_id}")
    assert event["injected"] is True and event["type"] == "tailgating"
    device_id = event["device_id"]
    # The backend stamps it with the street's time (the console sends no ts).
    ts = datetime.fromisoformat(event["ts"])
    assert before - FEW_STREET_S <= ts <= after + FEW_STREET_S, (before, ts, after)
    injected_at = time.monotonic()
    screenshot(page, "inject")

    # Events: the injected event in the device's feed, with no "injected only" filter.
    go(page, "Events", "Events")
    choose(page, "events-device", device_id)
    # Any time and tailgating only: at 60x the gate's own events (several a wall-second) soon
    # push the injected one out of the grid's view and, after 15 wall-seconds, out of the
    # default range (the street's last 15 minutes), which a loaded machine can spend getting here.
    choose(page, "events-range", "Any time")
    choose(page, "events-type", "tailgating")
    # The grid draws on a canvas; its cells are mirrored in an off-screen table for screen readers.
    feed = page.get_by_test_id("stDataFrame")
    expect(feed.get_by_text("extra_people=2", exact=True).first).to_be_attached()

    # Alarms: the tailgating alarm, acknowledged with a comment under the operator's name.
    alarm = next(
        a for a in backend.get("/alarms", device_id=device_id) if a["rule"] == "tailgating"
    )
    go(page, "Alarms", "Alarms")
    card = page.locator(f".st-key-alarms-{alarm['id']}-comment")
    card.locator("input").fill("guard on the way")
    page.locator(f".st-key-alarms-{alarm['id']}-acknowledge button").click()
    expect(page.get_by_text(f"Alarm {alarm['id']} acknowledged by {OPERATOR}.")).to_be_visible()
    acked = backend.get(f"/alarms/{alarm['id']}")
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == OPERATOR
    assert acked["notes"][-1]["text"] == "guard on the way"
    expect(page.locator(f".st-key-alarms-{alarm['id']}-acknowledge button")).to_be_disabled()
    screenshot(page, "alarms")
    # The rule clears a tailgating alarm after TAILGATING_QUIET street seconds without a new
    # occurrence (contracts/kinds/gate.py: 1,800 s, half a wall-minute at 60x), judged by street
    # time: the gate's next messages, stamped street-seconds later, do not end it. So it is
    # still open 10 wall-seconds after the injection.
    assert TAILGATING_QUIET.total_seconds() / float(FLEET_SPEED) > 10 + 5
    while time.monotonic() < injected_at + 10:
        assert backend.get(f"/alarms/{alarm['id']}")["status"] != "cleared"

    # Events: the injected event among the injected ones, and in the CSV download.
    go(page, "Events", "Events")
    choose(page, "events-device", device_id)
    choose(page, "events-range", "Any time")
    choose(page, "events-injected", "Injected only")
    expect(feed.get_by_text("tailgating", exact=True).first).to_be_attached()
    expect(feed.get_by_text("extra_people=2", exact=True).first).to_be_attached()
    csv = download(page, "Download CSV").read_text()
    assert event_id in csv and csv.startswith("event_id,device_id,kind,type")
    choose(page, "events-injected", "All")
    expect(feed.get_by_text("entry-granted", exact=True).first).to_be_attached()
    expect(page.get_by_text(re.compile("refreshes every"))).to_be_visible()
    screenshot(page, "events")

    # Devices: the gate's twin and telemetry charts.
    go(page, "Devices", "Devices")
    choose(page, "devices-selected", device_id)
    page.get_by_role("tab", name="Telemetry").click()
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
    screenshot(page, "devices")

    # Data quality: a malformed message, published with a gate's own credentials, is refused.
    intruder = DeviceClient(broker.port, "gate-north", creds.devices["gate-north"])
    intruder.publish_raw("lijia/gate/gate-north/events", b"{not json")
    intruder.close()
    wait_until(lambda: backend.get("/quality")["dead_lettered"] >= 1)
    go(page, "Data quality", "Data quality")
    expect(page.get_by_text("Backend healthy")).to_be_visible()
    expect(page.get_by_text("Recent dead letters")).to_be_visible()
    expect(page.get_by_text(re.compile("refreshes every"))).to_be_visible()
    screenshot(page, "quality")

    # The overview again, with the acknowledged alarm on the map; then in Chinese.
    go(page, "Overview", "Lijia Street")
    expect(page.get_by_text(re.compile("refreshes every"))).to_be_visible()
    screenshot(page, "overview")
    page.get_by_test_id("stSidebar").get_by_text("中文", exact=True).click()
    expect(page.get_by_role("heading", name="礼嘉街道", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile("每 5 秒刷新"))).to_be_visible()
    screenshot(page, "overview-zh")
    context.close()

    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    for shot in sorted(SHOTS.glob("*.png")):
        shutil.copy(shot, DOCS_SHOTS / shot.name)
    assert {p.name for p in DOCS_SHOTS.glob("*.png")} >= {
        f"{n}.png"
        for n in ("overview", "overview-zh", "devices", "events", "alarms", "inject", "quality")
    }


def test_shipped_scenario_started_from_the_inject_page_passes(
    backend: BackendProcess, console: str, browser: Any
) -> None:
    """The Inject page's drill tab: pick a shipped scenario, start it, see it pass with its
    verdicts (no simulator needed: the drills inject as the devices)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(console)
    go(page, "Inject", "Inject an event")
    page.get_by_role("tab", name="Run a shipped scenario").click()
    choose(page, "drills-name", "quiet-hours-music")
    expect(page.get_by_text("the violation raises an alarm", exact=True)).to_be_visible()
    page.locator(".st-key-drills-start button").click()

    expect(page.get_by_text("Passed quiet-hours-music: 2/2 expectations")).to_be_visible()
    expect(page.get_by_text("PASS · the violation raises an alarm")).to_be_visible()
    [run] = backend.get("/scenarios/runs")
    assert run["name"] == "quiet-hours-music" and run["status"] == "passed"
    expect(page.get_by_text(run["run_id"]).first).to_be_visible()
    screenshot(page, "scenario-run")
    context.close()
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHOTS / "scenario-run.png", DOCS_SHOTS / "scenario-run.png")


def test_street_clock_in_the_header_and_pause_from_the_sidebar(
    broker: BrokerProcess,
    creds_dir: Path,
    backend: BackendProcess,
    console: str,
    browser: Any,
    tmp_path: Path,
) -> None:
    """Every page's header shows the street's clock of a simulator at 60x; the sidebar's pause
    stops it (the header says so, GET /clock too) and resume starts it again."""
    from playwright.sync_api import expect

    sim = Simulator(
        broker.port, creds_dir, tmp_path / "sim.log",
        "--speed", "60", "--start", "2026-11-20T07:00", "--only", "gate-north",
    )  # fmt: skip
    try:
        wait_until(lambda: backend.get("/clock")["source"] == "simulator", timeout=60)
        expect.set_options(timeout=WAIT_MS)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(console)
        clock = page.locator(".st-key-clock-header")
        expect(clock).to_contain_text(re.compile(r"Street time Fri 2026-11-2\d \d\d:\d\d · 60×"))
        go(page, "Events", "Events")
        expect(clock).to_contain_text("60×")

        page.locator(".st-key-clock-pause button").click()
        expect(clock).to_contain_text("⏸ paused")
        paused = backend.get("/clock")
        assert paused["paused"] is True
        stamp = datetime.fromisoformat(paused["now"]).astimezone(STREET_TZ)
        expect(clock).to_contain_text(f"{stamp:%Y-%m-%d %H:%M}")
        expect(page.locator(".st-key-clock-pause button")).to_contain_text("Resume")
        screenshot(page, "street-clock-paused")

        page.locator(".st-key-clock-pause button").click()
        expect(clock).to_contain_text("60×")
        assert backend.get("/clock")["paused"] is False
        context.close()
    finally:
        sim.stop()
