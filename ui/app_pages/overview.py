"""Overview: today's headline figures, the street map with every device, activity per hour."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from adapters.api_types import AlarmRow
from contracts.vocabulary import AlarmStatus
from ui.api import ApiError, call
from ui.charts import activity_chart, hourly_frame, legend_html
from ui.common import (
    SEVERITIES,
    SEVERITY_ICON,
    alarm_title,
    device_name,
    figure_label,
    fmt_clock,
    fmt_number,
    kind_label,
    kinds,
    now_local,
)
from ui.i18n import t
from ui.street_map import street_map

REFRESH_S = 5
MAX_ALARMS_LISTED = 8

st.title(t("app.title"))
st.caption(t("app.subtitle"))


def parent_figure(kind: str, name: str) -> str | None:
    """The figure this one narrows (same event, stricter filter): "entries within 3 s" is a
    share of "entries". Read from the contract's StatSpecs, so no kind is named here."""
    spec = kinds().get(kind)
    stats = {s.name: s for s in spec.stats} if spec else {}
    child = stats.get(name)
    if child is None or not child.event_type or not (child.where or child.at_most):
        return None
    for other in stats.values():
        if (
            other.name != name
            and other.event_type == child.event_type
            and not other.telemetry_field
            and all(child.where.get(k) == v for k, v in other.where.items())
            and all(k in child.at_most and child.at_most[k] <= v for k, v in other.at_most.items())
            and (other.where, other.at_most) != (child.where, child.at_most)
        ):
            return other.name
    return None


def figure_cards(stats: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Figures grouped by kind, in the contract's order; a figure that narrows another carries
    its share of it."""
    figures = stats.get("figures", [])
    values = {(f["kind"], f["name"]): f for f in figures}
    cards: dict[str, list[dict[str, Any]]] = {}
    for fig in figures:
        item = {"label": figure_label(fig), "value": fig["value"]}
        parent = values.get((fig["kind"], parent_figure(fig["kind"], fig["name"]) or ""))
        if parent is not None:
            item["share"] = f"{fig['value'] / parent['value']:.0%}" if parent["value"] else "–"
            item["of"] = figure_label(parent)
        cards.setdefault(fig["kind"], []).append(item)
    return list(cards.items())


def headline(stats: dict[str, Any]) -> None:
    st.subheader(t("overview.today", day=stats["day"]))
    by_severity = stats.get("alarms_by_severity", {})
    severity_line = "  ".join(
        f"{SEVERITY_ICON[s]} {by_severity[s]}" for s in SEVERITIES if by_severity.get(s)
    )
    cards = figure_cards(stats)
    per_row = 4
    slots = [None, *cards]
    for start in range(0, len(slots), per_row):
        for col, card in zip(st.columns(per_row), slots[start : start + per_row], strict=False):
            with col, st.container(border=True, height="stretch"):
                if card is None:
                    st.caption(t("app.title"))
                    st.metric(
                        t("overview.open_alarms"),
                        fmt_number(stats["open_alarms"]),
                        delta=severity_line or None,
                        delta_color="off",
                        delta_arrow="off",
                    )
                    st.markdown(
                        f"{t('overview.devices_online')} "
                        f"**{stats['devices_online']} / {stats['devices_total']}**"
                    )
                    continue
                kind, items = card
                st.caption(kind_label(kind))
                first, rest = items[0], items[1:]
                st.metric(first["label"], fmt_number(first["value"]))
                for item in rest:
                    share = (
                        f" · :gray[{t('overview.share_of', share=item['share'], of=item['of'])}]"
                        if "share" in item
                        else ""
                    )
                    st.markdown(f"{item['label']} **{fmt_number(item['value'])}**{share}")


def open_alarms(alarms: list[AlarmRow], names: dict[str, str]) -> None:
    st.subheader(t("overview.alarms_now"))
    if not alarms:
        st.success(t("overview.no_alarms"))
        return
    with st.container(border=True):
        for alarm in alarms[:MAX_ALARMS_LISTED]:
            icon = SEVERITY_ICON.get(alarm["severity"], "⚪")
            device = names.get(alarm["device_id"], alarm["device_id"])
            ack = " ✔️" if alarm["status"] == AlarmStatus.ACKNOWLEDGED else ""
            st.markdown(
                f"{icon} **{alarm_title(alarm)}**{ack}  \n"
                f":gray[{device} · {fmt_clock(alarm['last_at'])}]"
            )
        if len(alarms) > MAX_ALARMS_LISTED:
            st.caption(t("overview.more_alarms", n=len(alarms) - MAX_ALARMS_LISTED))


def by_kind(devices: list[dict[str, Any]]) -> None:
    st.subheader(t("overview.by_kind"))
    rows = []
    for kind in sorted({d["kind"] for d in devices}, key=kind_label):
        mine = [d for d in devices if d["kind"] == kind]
        online = sum(d["availability"] == "online" for d in mine)
        alarms = sum(d.get("open_alarms", 0) for d in mine)
        rows.append(
            {
                t("col.kind"): kind_label(kind),
                t("col.online"): f"{online} / {len(mine)}",
                t("col.alarms"): f"🔴 {alarms}" if alarms else "–",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def activity(stats: dict[str, Any]) -> None:
    st.subheader(t("overview.activity"))
    labels = {(f["kind"], f["name"]): figure_label(f) for f in stats["figures"]}
    frame = hourly_frame(stats.get("hourly", []), labels)
    if frame.empty:
        st.info(t("overview.no_activity"))
        return
    kinds_seen = sorted(frame["kind"].unique(), key=kind_label)
    per_row = 3
    for start in range(0, len(kinds_seen), per_row):
        cols = st.columns(per_row)
        for col, kind in zip(cols, kinds_seen[start : start + per_row], strict=False):
            mine = frame[frame["kind"] == kind]
            with col, st.container(border=True, height="stretch"):
                st.altair_chart(activity_chart(mine, kind_label(kind)), width="stretch")
                key = legend_html(list(mine["figure"].unique()))
                st.markdown(f"<div style='font-size:0.8rem'>{key}</div>", unsafe_allow_html=True)


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    try:
        stats = call(lambda api: api.stats())
        devices = call(lambda api: api.devices())["data"]
        alarms = call(lambda api: api.alarms(status="open", limit=50))
    except ApiError as exc:
        st.error(str(exc))
        return
    headline(stats)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader(t("overview.map"))
        st.altair_chart(street_map(devices), width="stretch")
        st.caption(t("overview.map_help"))
    with right:
        open_alarms(alarms, {d["device_id"]: device_name(d) for d in devices})
        by_kind(devices)
    activity(stats)
    st.caption(t("updated", time=now_local().strftime("%H:%M:%S"), every=REFRESH_S))


live()
