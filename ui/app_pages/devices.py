"""Devices: a filterable table, and one device's twin, telemetry, events, alarms and commands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from adapters.api_types import TelemetryPoint
from ui.api import ApiError, call
from ui.charts import telemetry_chart
from ui.clock import street_now
from ui.commands import command_progress
from ui.common import (
    ALL,
    alarm_title,
    availability_text,
    details,
    device_name,
    event_row,
    fmt_clock,
    fmt_time,
    kind_filter,
    kind_label,
    kinds,
    numeric_fields,
    severity_text,
    status_text,
    yes_no,
    yes_no_filter,
)
from ui.forms import schema_form
from ui.i18n import t

st.title(t("devices.title"))
st.caption(t("devices.caption"))

WINDOWS = {"minute": timedelta(hours=3), "hour": timedelta(days=2)}


def filters() -> dict[str, Any]:
    c1, c2, c3 = st.columns(3)
    kind = kind_filter(c1, t("devices.filter_kind"), "devices.kind")
    availability = c2.selectbox(
        t("devices.filter_availability"),
        [ALL, "online", "offline", "unknown"],
        format_func=lambda a: availability_text(a) if a else t("all"),
        key="devices.availability",
    )
    alarm = yes_no_filter(
        c3,
        t("devices.filter_alarm"),
        "devices.alarm",
        yes=t("devices.with_alarm"),
        no=t("devices.without_alarm"),
    )
    return {"kind": kind or None, "availability": availability or None, "alarm": yes_no(alarm)}


def table(devices: list[dict[str, Any]]) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("col.device"): device_name(d),
                    t("col.device_id"): d["device_id"],
                    t("col.kind"): kind_label(d["kind"]),
                    t("col.availability"): availability_text(d["availability"]),
                    t("col.alarms"): (
                        f"{severity_text(d['worst_severity'])} ×{d['open_alarms']}"
                        if d["open_alarms"]
                        else ""
                    ),
                    t("col.last_seen"): fmt_time(d["last_seen"]),
                }
                for d in devices
            ]
        ),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(devices), 420),
    )


def twin(device: dict[str, Any]) -> None:
    why = f" ({device['availability_reason']})" if device["availability_reason"] else ""
    seq = device["last_seq"] if device["last_seq"] is not None else "–"
    st.markdown(
        f"{availability_text(device['availability'])}{why} · "
        f"{t('col.last_seen')}: **{fmt_time(device['last_seen']) or '–'}** · "
        f"{t('devices.last_seq')}: **{seq}**"
    )
    state = device.get("telemetry") or {}
    if not state:
        st.info(t("devices.no_telemetry"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {t("col.field"): k, t("col.value"): v if isinstance(v, str) else str(v)}
                for k, v in state.items()
            ]
        ),
        hide_index=True,
        width=560,
    )


def series(device_id: str, field: str, bucket: str | None, since: datetime) -> list[TelemetryPoint]:
    """One field's points by bucket since `since`."""
    return call(lambda api: api.telemetry(device_id, field=field, bucket=bucket, since=since))


def telemetry(device: dict[str, Any]) -> None:
    fields = numeric_fields(kinds()[device["kind"]].telemetry.model_json_schema())
    if not fields:
        st.info(t("devices.no_numeric"))
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.multiselect(
        t("devices.fields"), fields, default=fields[:4], key=f"devices.fields.{device['kind']}"
    )
    bucket = c2.segmented_control(
        t("devices.bucket"),
        ["minute", "hour"],
        format_func=lambda b: t(f"devices.bucket.{b}"),
        default="minute",
        required=True,
        key="devices.bucket",
        help=t("devices.bucket_help"),
    )
    since = street_now() - WINDOWS[bucket or "minute"]
    cols = st.columns(2)
    for i, field in enumerate(chosen):
        points = [
            p
            for p in series(device["device_id"], field, bucket, since)
            if p["samples"] and p["avg"] is not None
        ]
        with cols[i % 2]:
            if points:
                st.altair_chart(telemetry_chart(points, field), width="stretch")
            else:
                st.caption(t("devices.no_series", field=field))


def recent_events(device: dict[str, Any]) -> None:
    events = call(lambda api: api.events(device_id=device["device_id"], limit=25))["data"]
    if not events:
        st.info(t("devices.no_events"))
        return
    st.dataframe(
        pd.DataFrame([event_row(e) for e in events]),
        hide_index=True,
        width="stretch",
    )


def device_alarms(device: dict[str, Any]) -> None:
    alarms = call(lambda api: api.alarms(device_id=device["device_id"], status="open"))
    if not alarms:
        st.success(t("devices.no_open_alarms"))
        return
    for alarm in alarms:
        raised = t("alarms.raised_at", time=fmt_time(alarm["raised_at"]))
        st.markdown(
            f"{severity_text(alarm['severity'])} · **{alarm_title(alarm)}** · "
            f"{status_text(alarm['status'])} · {raised}"
        )
    st.page_link("app_pages/alarms.py", label=t("devices.to_alarms"), icon="🚨")


def commands(device: dict[str, Any]) -> None:
    spec = kinds()[device["kind"]]
    device_id = device["device_id"]
    left, right = st.columns(2, gap="large")
    with left:
        name = st.selectbox(
            t("devices.command"), list(spec.commands), key=f"devices.cmd.{device_id}"
        )
        if name is None:
            return
        schema = spec.commands[name].model_json_schema()
        with st.form(f"command-{device_id}-{name}", border=True):
            if schema.get("description"):
                st.caption(schema["description"])
            if not schema.get("properties"):
                st.caption(t("devices.no_params"))
            params = schema_form(schema, key=f"cmd.{device_id}.{name}")
            send = st.form_submit_button(t("devices.send"), type="primary", key="devices.send")
    with right:
        if send:
            try:
                sent = call(lambda api: api.send_command(device_id, name, params))
            except ApiError as exc:
                st.error(str(exc))
            else:
                st.session_state[f"devices.last_command.{device_id}"] = sent["command_id"]
        command_id = st.session_state.get(f"devices.last_command.{device_id}")
        if command_id:
            command_progress(command_id)
        recent = call(lambda api: api.commands(device_id=device_id))[:10]
        if recent:
            st.markdown(f"**{t('devices.recent_commands')}**")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("col.time"): fmt_clock(c["created_at"]),
                            t("col.command"): c["name"],
                            t("col.params"): details(c["params"]),
                            t("col.status"): c["status"],
                            t("col.reason"): c["reason"] or "",
                        }
                        for c in recent
                    ]
                ),
                hide_index=True,
                width="stretch",
            )


def detail(devices: list[dict[str, Any]]) -> None:
    by_id = {d["device_id"]: d for d in devices}
    device_id = st.selectbox(
        t("devices.select"),
        list(by_id),
        format_func=lambda i: f"{device_name(by_id[i])} · {i}",
        key="devices.selected",
    )
    if device_id is None:
        return
    device = call(lambda api: api.device(device_id))
    st.subheader(device_name(device))
    st.caption(f"{kind_label(device['kind'])} · `{device_id}`")
    tab_names = ["tab_state", "tab_telemetry", "tab_events", "tab_alarms", "tab_commands"]
    tabs = st.tabs([t(f"devices.{n}") for n in tab_names], key="devices.tab")
    for tab, render in zip(
        tabs, (twin, telemetry, recent_events, device_alarms, commands), strict=True
    ):
        with tab:
            render(device)


try:
    total = call(lambda api: api.devices())["count"]
    chosen = filters()
    devices = call(lambda api: api.devices(**chosen))["data"]
    st.caption(t("devices.count", n=len(devices), total=total))
    if not devices:
        st.info(t("devices.none"))
        st.stop()
    table(devices)
    st.divider()
    detail(devices)
except ApiError as exc:
    st.error(str(exc))
