"""Inject events: one-click incidents, a form generated from the contract, or raw JSON. The result
follows the event back through ingest and shows the alarm it raised, if any. A fourth tab runs a
shipped scenario (drill) and follows its verdicts (ui/drills.py)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from ui.api import ApiError, call
from ui.common import device_name, kind_label, kinds
from ui.drills import crash_drill, scenarios_section, start_inline
from ui.forms import example, schema_form
from ui.i18n import t
from ui.incidents import INCIDENTS, Incident, follow, inject

st.title(t("inject.title"))
st.caption(t("inject.caption"))


def incidents_tab(devices: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    st.caption(t("inc.intro"))
    chosen: list[dict[str, Any]] | None = None
    per_row = 3
    cards: list[Incident | None] = [*INCIDENTS, None]  # None: the device crash (a drill)
    for start in range(0, len(cards), per_row):
        cols = st.columns(per_row)
        for col, incident in zip(cols, cards[start : start + per_row], strict=False):
            with col, st.container(border=True, height="stretch"):
                if incident is None:
                    crash_card(devices)
                    continue
                picked = incident_card(incident, devices)
                if picked is not None:
                    chosen = picked
    return chosen


def crash_card(devices: list[dict[str, Any]]) -> None:
    """A simulated device loses power: a drill on the running simulator (the device's link goes
    without a goodbye, the broker publishes its Last Will), followed in the scenarios tab."""
    st.markdown(f"**💥 {t('inc.crash')}**")
    st.caption(t("inc.crash_desc"))
    by_id = {d["device_id"]: d for d in devices}
    device_id = str(
        st.selectbox(
            t("inject.device"),
            list(by_id),
            format_func=lambda i: device_name(by_id[i]),
            key="inc.crash.device",
            label_visibility="collapsed",
        )
    )
    if st.button(t("inc.go"), key="inc.crash.go", type="primary", width="stretch"):
        try:
            run = start_inline(crash_drill(device_id))
        except ApiError as exc:
            st.error(str(exc))
        else:
            st.success(t("inc.crash_started", run_id=run["run_id"]))


def incident_card(incident: Incident, devices: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    st.markdown(f"**{incident.icon} {t(f'inc.{incident.key}')}**")
    st.caption(t(f"inc.{incident.key}_desc"))
    candidates = {d["device_id"]: d for d in devices if d["kind"] == incident.kind}
    if not candidates:
        st.caption(t("inc.no_device", kind=kind_label(incident.kind)))
        st.button(t("inc.go"), key=f"inc.{incident.key}.go", disabled=True, width="stretch")
        return None
    device_id = st.selectbox(
        t("inject.device"),
        list(candidates),
        format_func=lambda i: device_name(candidates[i]),
        key=f"inc.{incident.key}.device",
        label_visibility="collapsed",
    )
    if st.button(t("inc.go"), key=f"inc.{incident.key}.go", type="primary", width="stretch"):
        device = candidates[str(device_id)]
        return [
            {"device_id": device["device_id"], "type": type_, "data": data}
            for type_, data in incident.events(device)
        ]
    return None


def form_tab(devices: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    by_id = {d["device_id"]: d for d in devices}
    c1, c2 = st.columns(2)
    device_id = c1.selectbox(
        t("inject.device"),
        list(by_id),
        format_func=lambda i: f"{device_name(by_id[i])} · {i}",
        key="inject.device",
    )
    device = by_id[str(device_id)]
    spec = kinds()[device["kind"]]
    event_type = c2.selectbox(t("inject.type"), list(spec.events), key="inject.type")
    schema = spec.events[str(event_type)].model_json_schema()
    with st.form(f"inject-{device_id}-{event_type}"):
        if schema.get("description"):
            st.caption(schema["description"])
        data = schema_form(schema, key=f"{device_id}.{event_type}")
        submitted = st.form_submit_button(t("inject.submit"), type="primary", key="inject.submit")
    if "inject.raw" not in st.session_state:
        body = {"device_id": device_id, "type": event_type, "data": example(schema)}
        st.session_state["inject.raw"] = json.dumps(body, ensure_ascii=False, indent=2)
    return [{"device_id": device_id, "type": event_type, "data": data}] if submitted else None


def raw_tab() -> list[dict[str, Any]] | None:
    st.text_area(t("inject.raw_label"), key="inject.raw", height=220, help=t("inject.raw_help"))
    if not st.button(t("inject.submit"), key="inject.raw_submit", type="primary"):
        return None
    try:
        body = json.loads(st.session_state.get("inject.raw") or "")
        if not isinstance(body, dict):
            raise ValueError("expected an object")
    except ValueError as exc:
        st.error(t("inject.raw_invalid", error=exc))
        return None
    return [body]


try:
    devices = call(lambda api: api.devices())["data"]
except ApiError as exc:
    st.error(str(exc))
    st.stop()
if not devices:
    st.warning(t("inject.no_devices"))
    st.stop()

tab_incidents, tab_form, tab_raw, tab_scenarios = st.tabs(
    [
        t("inject.tab_incidents"),
        t("inject.tab_form"),
        t("inject.tab_raw"),
        t("inject.tab_scenarios"),
    ],
    key="inject.tab",
)
with tab_incidents:
    from_incident = incidents_tab(devices)
with tab_form:
    from_form = form_tab(devices)
with tab_raw:
    from_raw = raw_tab()
with tab_scenarios:
    scenarios_section()

requests = from_incident or from_form or from_raw
if requests:
    st.subheader(t("inject.result"))
    names = {d["device_id"]: device_name(d) for d in devices}
    for body in requests:
        try:
            accepted = inject(body)
        except ApiError as exc:
            st.error(str(exc))
            break
        follow(accepted, str(body.get("device_id")), names)
