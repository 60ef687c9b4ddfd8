"""Alarms: open alarms by severity with acknowledge / clear / comment, and the history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from adapters.api_types import AlarmRow
from contracts.vocabulary import AlarmStatus
from ui.api import ApiError, call
from ui.common import (
    SEVERITIES,
    SEVERITY_ICON,
    alarm_title,
    details,
    device_name,
    fmt_clock,
    fmt_time,
    severity_text,
    status_text,
)
from ui.i18n import STRINGS, t

WATCH_S = 5

st.title(t("alarms.title"))
st.caption(t("alarms.caption"))


def operator() -> str:
    return (st.session_state.get("operator") or "operator").strip() or "operator"


def act(alarm_id: int, action: str) -> None:
    """Button callback: runs before the page, so the page shows the alarm's new state."""
    text = (st.session_state.get(f"alarms.{alarm_id}.comment") or "").strip() or None
    by = operator()
    try:
        if action == "comment":
            if not text:
                return
            call(lambda api: api.comment_alarm(alarm_id, by=by, text=text))
            st.session_state["alarms.flash"] = ("success", f"💬 #{alarm_id}: {text}")
        else:
            if action == "acknowledge":
                call(lambda api: api.acknowledge_alarm(alarm_id, by=by, comment=text))
            else:
                call(lambda api: api.clear_alarm(alarm_id, by=by, comment=text))
            done = "alarms.done.acknowledged" if action == "acknowledge" else "alarms.done.cleared"
            st.session_state["alarms.flash"] = ("success", t(done, id=alarm_id, by=by))
        st.session_state[f"alarms.{alarm_id}.comment"] = ""
    except ApiError as exc:
        st.session_state["alarms.flash"] = ("error", str(exc))


def signature(alarms: list[AlarmRow]) -> tuple[tuple[int, str, int], ...]:
    return tuple((a["id"], a["status"], a["occurrences"]) for a in alarms)


@st.fragment(run_every=WATCH_S)
def watch(shown: tuple[tuple[int, str, int], ...]) -> None:
    """Re-render the page when the open alarms change (not every few seconds: a comment being
    typed is kept until then)."""
    try:
        now = signature(call(lambda api: api.alarms(status="open")))
    except ApiError:
        return
    if now != shown:
        st.rerun()


def alarm_card(alarm: AlarmRow, names: dict[str, str]) -> None:
    alarm_id = alarm["id"]
    with st.container(border=True):
        top, right = st.columns([4, 1])
        icon = SEVERITY_ICON.get(alarm["severity"], "⚪")
        top.markdown(f"{icon} **{alarm_title(alarm)}**")
        with right.container(horizontal=True, horizontal_alignment="right"):
            st.badge(
                status_text(alarm["status"]),
                color="red" if alarm["status"] == AlarmStatus.ACTIVE else "blue",
            )
        device = names.get(alarm["device_id"], alarm["device_id"])
        line = [
            f"{device} · `{alarm['device_id']}`",
            t("alarms.raised_at", time=fmt_time(alarm["raised_at"])),
        ]
        if alarm["occurrences"] > 1:
            line.append(
                t("alarms.occurrences", n=alarm["occurrences"], time=fmt_clock(alarm["last_at"]))
            )
        if alarm["acknowledged_by"]:
            line.append(
                t(
                    "alarms.ack_by",
                    by=alarm["acknowledged_by"],
                    time=fmt_clock(alarm["acknowledged_at"]),
                )
            )
        st.caption(" · ".join(line))
        if alarm.get("details"):
            st.caption(details(alarm["details"]))
        comment, ack, clear, note = st.columns([4.5, 1.3, 1, 1.3], vertical_alignment="bottom")
        comment.text_input(
            t("alarms.comment"),
            key=f"alarms.{alarm_id}.comment",
            placeholder=t("alarms.comment_placeholder"),
            max_chars=500,
            label_visibility="collapsed",
        )
        ack.button(
            t("alarms.acknowledge"),
            key=f"alarms.{alarm_id}.acknowledge",
            disabled=alarm["status"] != AlarmStatus.ACTIVE,
            on_click=act,
            args=(alarm_id, "acknowledge"),
            type="primary",
            width="stretch",
        )
        clear.button(
            t("alarms.clear"),
            key=f"alarms.{alarm_id}.clear",
            on_click=act,
            args=(alarm_id, "clear"),
            width="stretch",
        )
        note.button(
            t("alarms.note"),
            key=f"alarms.{alarm_id}.note",
            on_click=act,
            args=(alarm_id, "comment"),
            icon="💬",
            width="stretch",
        )


def open_tab(alarms: list[AlarmRow], names: dict[str, str]) -> None:
    counts = {s: sum(a["severity"] == s for a in alarms) for s in SEVERITIES}
    for col, severity in zip(st.columns(len(SEVERITIES)), SEVERITIES, strict=True):
        col.metric(severity_text(severity), counts[severity], border=True)
    if not alarms:
        st.success(t("alarms.none_open"))
        return
    for severity in SEVERITIES:
        group = [a for a in alarms if a["severity"] == severity]
        if group:
            st.markdown(f"##### {SEVERITY_ICON[severity]} {t(f'severity.{severity}').capitalize()}")
        for alarm in group:
            alarm_card(alarm, names)
    for alarm in (a for a in alarms if a["severity"] not in SEVERITIES):
        alarm_card(alarm, names)


def note_action(action: str) -> str:
    return t(f"note.{action}") if f"note.{action}" in STRINGS else action


def who_when(by: str | None, at: str | None) -> str:
    return f"{by} · {fmt_time(at)}" if by else ""


def history_tab(names: dict[str, str]) -> None:
    st.caption(t("alarms.history_caption"))
    alarms = sorted(
        call(lambda api: api.alarms(status="all", limit=500)), key=lambda a: a["id"], reverse=True
    )
    if not alarms:
        st.info(t("alarms.none"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": a["id"],
                    t("col.raised"): fmt_time(a["raised_at"]),
                    t("col.device"): names.get(a["device_id"], a["device_id"]),
                    t("col.severity"): severity_text(a["severity"]),
                    t("col.alarm"): alarm_title(a),
                    t("col.status"): status_text(a["status"]),
                    t("col.acknowledged"): who_when(a["acknowledged_by"], a["acknowledged_at"]),
                    t("col.cleared"): who_when(a["cleared_by"], a["cleared_at"]),
                    t("col.reason"): a["clear_reason"] or "",
                }
                for a in alarms
            ]
        ),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(alarms), 420),
    )
    by_id = {a["id"]: a for a in alarms}
    alarm_id = st.selectbox(
        t("alarms.notes_of"),
        list(by_id),
        format_func=lambda i: (
            f"#{i} · {alarm_title(by_id[i])} · "
            f"{names.get(by_id[i]['device_id'], by_id[i]['device_id'])}"
        ),
        key="alarms.notes_of",
    )
    if alarm_id is None:
        return
    notes = call(lambda api: api.alarm(alarm_id))["notes"]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("col.time"): fmt_time(n["at"]),
                    t("col.action"): note_action(n["action"]),
                    t("col.by"): n["author"],
                    t("col.comment"): n["text"] or "",
                }
                for n in notes
            ]
        ),
        hide_index=True,
        width="stretch",
    )


flash = st.session_state.pop("alarms.flash", None)
if flash:
    level, message = flash
    (st.success if level == "success" else st.error)(message)

try:
    names = {d["device_id"]: device_name(d) for d in call(lambda api: api.devices())["data"]}
    alarms = call(lambda api: api.alarms(status="open"))
    open_, history = st.tabs([t("alarms.tab_open"), t("alarms.tab_history")], key="alarms.tab")
    with open_:
        open_tab(alarms, names)
    with history:
        history_tab(names)
except ApiError as exc:
    st.error(str(exc))
    st.stop()

watch(signature(alarms))
