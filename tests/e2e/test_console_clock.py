"""The street's clock in the console (ui/clock.py), driven by AppTest against a real backend,
Mosquitto and simulator: the header of every page shows the street's weekday, date, time and
speed, the sidebar its seed and start and the controls (pause, resume, speed, jump), and every
"now" and "today" of the pages follows street time, not the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from contracts.vocabulary import STREET_TZ
from stack.broker import BrokerProcess
from stack.processes import API_KEY, ROOT, BackendProcess, Simulator, wait_until

pytestmark = pytest.mark.integration

APP = ROOT / "ui" / "streamlit_app.py"
TIMEOUT = 20
# A Friday morning two weeks and more before the wall clock of these tests: a page that still
# read the wall clock would find none of the street's events "in the last 15 minutes".
START = "2026-11-20T07:00:00+08:00"
SEED = 11
GATES = ("gate-north", "gate-south")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"


@pytest.fixture
def console_env(backend: BackendProcess, monkeypatch: pytest.MonkeyPatch) -> BackendProcess:
    monkeypatch.setenv("LIJIA_API_URL", backend.url)
    monkeypatch.setenv("LIJIA_API_KEY", API_KEY)
    return backend


def simulator(broker: BrokerProcess, creds_dir: Path, log: Path, *args: str) -> Simulator:
    only = [arg for gate in GATES for arg in ("--only", gate)]
    return Simulator(broker.port, creds_dir, log, "--seed", str(SEED), *only, *args)


@pytest.fixture
def street(
    console_env: BackendProcess, broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> Iterator[BackendProcess]:
    """Two gates of the street at 60x from START; the backend follows their clock."""
    sim = simulator(broker, creds_dir, tmp_path / "sim.log", "--speed", "60", "--start", START)
    try:
        wait_until(lambda: console_env.get("/clock")["source"] == "simulator", timeout=60)
        yield console_env
    finally:
        sim.stop()


def app(page: str | None = None, lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if lang:
        at.segmented_control(key="lang").set_value(lang).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def header(at: AppTest) -> str:
    [line] = [m.value for m in at.markdown if m.value.startswith("🕒 ")]
    return str(line)


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def street_minutes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every street minute (Chongqing, HH:MM) between two reads of GET /clock."""
    now = datetime.fromisoformat(before["now"]).astimezone(STREET_TZ).replace(second=0)
    end = datetime.fromisoformat(after["now"]).astimezone(STREET_TZ)
    minutes = []
    while now <= end:
        minutes.append(f"{now:%Y-%m-%d %H:%M}")
        now += timedelta(minutes=1)
    return minutes


def local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(STREET_TZ)


# -- the header -------------------------------------------------------------------------------
def test_every_page_shows_the_street_clock_with_seed_and_start(street: BackendProcess) -> None:
    for page in (None, "events", "alarms", "inject"):
        before = street.get("/clock")
        at = app(page)
        after = street.get("/clock")
        assert not at.exception, at.exception
        line = header(at)
        assert line.startswith("🕒 Street time **Fri 2026-11-") and line.endswith("** · 60×"), line
        assert any(f"**Fri {m}**" in line for m in street_minutes(before, after)), line
    assert f"Seed {SEED} · start Fri 2026-11-20 07:00" in captions(at)

    chinese = app(lang="zh")
    line = header(chinese)
    assert line.startswith("🕒 街道时间 **周五 2026-11-") and line.endswith(" · 60×"), line
    assert f"随机种子 {SEED} · 起始 周五 2026-11-20 07:00" in captions(chinese)


def test_without_a_simulator_the_header_says_wall_clock_and_control_is_refused(
    console_env: BackendProcess,
) -> None:
    before = datetime.now(UTC).astimezone(STREET_TZ).replace(second=0, microsecond=0)
    at = app()
    after = datetime.now(UTC).astimezone(STREET_TZ)
    line = header(at)
    assert line.endswith(" · wall clock"), line
    assert any(f"{m:%Y-%m-%d %H:%M}" in line for m in (before, after.replace(second=0)))
    assert "No simulator runs" in captions(at)

    at.button(key="clock.pause").click().run()
    assert not at.exception, at.exception
    [message] = errors(at)
    assert message.startswith("The backend refused the request (409): "), message
    assert console_env.get("/clock")["source"] == "wall"


# -- the controls -----------------------------------------------------------------------------
def test_pause_resume_speed_and_jump_from_the_sidebar(street: BackendProcess) -> None:
    at = app()
    at.button(key="clock.pause").click().run()
    assert not at.exception, at.exception
    assert not errors(at)
    paused = street.get("/clock")
    assert paused["paused"] is True
    assert header(at).endswith(" · ⏸ paused")
    assert f" {local(paused['now']):%Y-%m-%d %H:%M}**" in header(at)
    assert [toast.value for toast in at.toast] == [
        f"Done: 🕒 Street time **Fri {local(paused['now']):%Y-%m-%d %H:%M}** · ⏸ paused"
    ]
    assert at.button(key="clock.pause").label == "Resume"
    at.segmented_control(key="lang").set_value("zh").run()
    assert header(at).endswith(" · ⏸ 已暂停") and at.button(key="clock.pause").label == "继续"
    at.segmented_control(key="lang").set_value("en").run()

    at.button(key="clock.pause").click().run()
    assert street.get("/clock")["paused"] is False
    assert at.button(key="clock.pause").label == "Pause"

    at.segmented_control(key="clock.speed").set_value("max").run()
    assert street.get("/clock")["speed"] == "max"
    assert header(at).endswith(" · ⏩ max")
    assert at.segmented_control(key="clock.speed").value == "max"
    # At "max" the clock cannot pause: the backend's reason is shown, nothing changes.
    at.button(key="clock.pause").click().run()
    [message] = errors(at)
    assert message.startswith("The backend refused the request (409): "), message
    assert "max" in message
    assert street.get("/clock")["paused"] is False

    at.segmented_control(key="clock.speed").set_value("60").run()
    assert not errors(at)
    assert street.get("/clock")["speed"] == 60
    assert at.segmented_control(key="clock.speed").value == "60"

    # Jump to the next 07:30 street time (the default): the street's morning rush.
    assert at.time_input(key="clock.jump_at").value == time(7, 30)
    before = local(street.get("/clock")["now"])
    at.button(key="clock.jump").click().run()
    assert not errors(at), errors(at)
    target = before.replace(hour=7, minute=30, second=0, microsecond=0)
    if target <= before:
        target += timedelta(days=1)
    landed = wait_until(
        lambda: (c := street.get("/clock"))["jumping_to"] is None and local(c["now"]), timeout=60
    )
    assert target <= landed < target + timedelta(hours=1), (before, landed)
    at.run()
    assert f"**{target:%a %Y-%m-%d} " in header(at), header(at)


# -- every "now" and "today" is the street's ---------------------------------------------------
def test_pages_follow_street_time(street: BackendProcess) -> None:
    events = wait_until(lambda: street.get("/events")["data"], timeout=60)
    wait_until(lambda: street.get("/stats")["hourly"], timeout=60)
    clock = street.get("/clock")
    assert abs(datetime.fromisoformat(events[0]["ts"]) - datetime.fromisoformat(clock["now"])) < (
        timedelta(hours=1)
    )

    overview = app()
    assert f"Today on the street · {clock['day']}" in [s.value for s in overview.subheader]

    feed = app("events")
    feed.selectbox(key="events.range").select("15m").run()
    assert not feed.exception, feed.exception
    assert len(feed.dataframe[0].value) >= 1  # by the wall clock, these are weeks old
    feed.selectbox(key="events.range").select("today").run()
    assert len(feed.dataframe[0].value) >= 1


def test_overview_today_moves_to_the_new_street_day_at_max_over_midnight(
    console_env: BackendProcess, broker: BrokerProcess, creds_dir: Path, tmp_path: Path
) -> None:
    backend = console_env
    sim = simulator(
        broker, creds_dir, tmp_path / "sim.log", "--speed", "max", "--start", "2026-11-20T23:50"
    )
    try:
        wait_until(lambda: backend.get("/clock")["day"] == "2026-11-21", timeout=90)
        # The statistics' "today" is the street's (weeks before the wall calendar): the day the
        # clock shows, or the next one if the street has crossed another midnight meanwhile.
        clock_day = date.fromisoformat(backend.get("/clock")["day"])
        stats_day = date.fromisoformat(backend.get("/stats")["day"])
        assert (stats_day - clock_day).days in (0, 1) and clock_day >= date(2026, 11, 21)
        at = app()
        assert "Today on the street · 2026-11-21" in [s.value for s in at.subheader]
        assert header(at).startswith("🕒 Street time **Sat 2026-11-2")
        assert header(at).endswith(" · ⏩ max")
    finally:
        sim.stop()
