"""The street's clock in the console: `street_now()`, the console's one "now"; the header every
page shows (the street's weekday, date, time and speed); the operator's controls in the sidebar
(pause, resume, speed, jump) with the seed and start of the running street.

Street time is the simulator's time (contracts/clock.py); without a simulator it is wall time.
The console reads it from `GET /clock` once per full rerun and once per header refresh, keeps
the view in the session, and between two reads moves it on by the view's own mapping (wall
seconds elapsed × speed), so every "now" and "today" of a page follows the street cheaply.
"""

from __future__ import annotations

import time as monotonic_time
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from contracts.clock import MAX, ClockAction, ClockView
from contracts.vocabulary import STREET_TZ
from ui.api import ApiError, call
from ui.i18n import t

VIEW_KEY = "clock.view"  # session state: (the last ClockView or None, monotonic s of the read)
OUTCOME_KEY = "clock.outcome"  # session state: ("ok" | "error", text) of the last control
SPEED_KEY = "clock.speed"
JUMP_KEY = "clock.jump_at"
SPEEDS = ["1", "10", "60", "600", MAX]
DEFAULT_JUMP = time(7, 30)
HEADER_REFRESH_S = 1  # a clock at 60x moves a street minute per wall second


# -- street time --------------------------------------------------------------------------------
def read_clock() -> ClockView | None:
    """GET /clock now, kept for this session's `street_now()`; None when the backend cannot
    say (unreachable, or a backend without a street clock): the console then uses wall time."""
    try:
        view: ClockView | None = call(lambda api: api.clock())
    except ApiError:
        view = None
    st.session_state[VIEW_KEY] = (view, monotonic_time.monotonic())
    return view


def street_at(view: ClockView, elapsed_s: float) -> datetime:
    """The street's time `elapsed_s` wall seconds after the view was read: it stands still
    while paused, jumping or at "max" (until the next read), else it runs at the view's speed."""
    if view.paused or view.jumping_to is not None or view.speed == MAX:
        return view.now
    return view.now + timedelta(seconds=max(0.0, elapsed_s) * float(view.speed))


def street_now() -> datetime:
    """Street time now (UTC): the session's last view of the clock moved on by its mapping;
    wall time when there is none (outside a session, or the backend cannot say)."""
    try:
        stored = st.session_state.get(VIEW_KEY)
    except Exception:  # no script run context (e.g. a deferred download)
        return datetime.now(UTC)
    if stored is None:
        view, read_at = read_clock(), monotonic_time.monotonic()
    else:
        view, read_at = stored
    if view is None:
        return datetime.now(UTC)
    return street_at(view, monotonic_time.monotonic() - read_at)


def clock_view() -> ClockView | None:
    """The session's last view of the clock (read now if there is none yet)."""
    stored = st.session_state.get(VIEW_KEY)
    return read_clock() if stored is None else stored[0]


# -- words --------------------------------------------------------------------------------------
def speed_text(view: ClockView | None) -> str:
    """60×, ⏸ paused, ⏩ max, ⏩ jumping to 07:30, wall clock."""
    if view is None:
        return t("clock.unavailable")
    if view.source == "wall":
        return t("clock.wall")
    if view.jumping_to is not None:
        return "⏩ " + t("clock.jumping", to=f"{view.jumping_to.astimezone(STREET_TZ):%H:%M}")
    if view.paused:
        return "⏸ " + t("clock.paused")
    if view.speed == MAX:
        return "⏩ " + t("clock.max")
    return f"{float(view.speed):g}×"


def street_stamp(when: datetime) -> str:
    """周二 2026-12-08 07:31 / Tue 2026-12-08 07:31 (Chongqing)."""
    local = when.astimezone(STREET_TZ)
    return f"{t(f'weekday.{local.weekday()}')} {local:%Y-%m-%d %H:%M}"


def clock_line(view: ClockView | None, now: datetime) -> str:
    """The header: the street's weekday, date, time and speed."""
    return f"🕒 {t('clock.street')} **{street_stamp(now)}** · {speed_text(view)}"


def origin_line(view: ClockView) -> str:
    """The running street's seed, start and simulators."""
    start = street_stamp(view.start) if view.start else "–"
    seed = "–" if view.seed is None else str(view.seed)
    sims = ", ".join(view.simulators) or "–"
    return t("clock.origin", seed=seed, start=start, simulators=sims)


# -- the header ---------------------------------------------------------------------------------
@st.fragment(run_every=HEADER_REFRESH_S)
def clock_header() -> None:
    """Every page's header: re-read each second, so a pause or a jump shows within a second."""
    view = read_clock()
    with st.container(key="clock-header"):
        st.markdown(clock_line(view, street_now()))


# -- the controls -------------------------------------------------------------------------------
def _apply(action: ClockAction) -> None:
    """POST /clock; its outcome is shown by the run that follows (a notice or the reason)."""
    try:
        view = call(lambda api: api.set_clock(action)).clock
    except ApiError as exc:
        st.session_state[OUTCOME_KEY] = ("error", str(exc))
        return
    st.session_state[VIEW_KEY] = (view, monotonic_time.monotonic())
    st.session_state[OUTCOME_KEY] = ("ok", t("clock.done", clock=clock_line(view, view.now)))


def _pause_or_resume() -> None:
    view = clock_view()
    _apply(ClockAction(action="resume" if view is not None and view.paused else "pause"))


def _speed() -> None:
    chosen = st.session_state.get(SPEED_KEY)
    if chosen is None:  # the chosen speed clicked again: nothing asked
        return
    _apply(ClockAction(action="speed", speed=MAX if chosen == MAX else float(chosen)))


def _jump() -> None:
    at = st.session_state.get(JUMP_KEY) or DEFAULT_JUMP
    _apply(ClockAction(action="jump", at=at))


def _speed_choice(view: ClockView | None) -> str | None:
    if view is None or view.source == "wall":
        return None
    label = MAX if view.speed == MAX else f"{float(view.speed):g}"
    return label if label in SPEEDS else None


def clock_controls() -> None:
    """The sidebar's clock section: pause / resume, speed, jump to the next street time of day;
    a refusal shows the backend's reason, a success a notice with the new clock."""
    view = clock_view()
    st.markdown(f"**🕒 {t('clock.title')}**")
    outcome = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        kind, text = outcome
        if kind == "ok":
            st.toast(text, icon="🕒")
        else:
            st.error(text)
    unavailable = view is None
    paused = view is not None and view.paused
    st.button(
        t("clock.resume") if paused else t("clock.pause"),
        icon="▶️" if paused else "⏸️",
        key="clock.pause",
        on_click=_pause_or_resume,
        disabled=unavailable,
        width="stretch",
    )
    st.session_state[SPEED_KEY] = _speed_choice(view)  # follows the clock, whoever changed it
    st.segmented_control(
        t("clock.speed"),
        SPEEDS,
        format_func=lambda s: t("clock.max") if s == MAX else f"{s}×",
        key=SPEED_KEY,
        on_change=_speed,
        disabled=unavailable,
        help=t("clock.speed_help"),
    )
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    left.time_input(
        t("clock.jump_at"),
        value=DEFAULT_JUMP,
        step=timedelta(minutes=15),
        key=JUMP_KEY,
        disabled=unavailable,
        help=t("clock.jump_help"),
    )
    right.button(
        t("clock.jump"),
        icon="⏩",
        key="clock.jump",
        on_click=_jump,
        disabled=unavailable,
        width="stretch",
    )
    if view is None:
        st.caption(t("clock.unavailable_help"))
    elif view.source == "wall":
        st.caption(t("clock.wall_help"))
    else:
        st.caption(origin_line(view))
