"""Inject a device event: choose a device and type; the form comes from the contract's schema."""

from __future__ import annotations

import time

import streamlit as st

from contracts.catalogue import get_kind
from ui.api import ApiError, get, post
from ui.forms import schema_form

st.title("Inject an event · 注入事件")
st.caption(
    "The event is published on the device's own topic, flagged as injected, and comes back "
    "through ingest like any other. · 事件经由设备主题发布并标记为注入。"
)

try:
    devices = get("/devices")["data"]
except ApiError as exc:
    st.error(str(exc))
    st.stop()

if not devices:
    st.warning("No devices are provisioned. · 没有设备")
    st.stop()

labels = {d["device_id"]: f"{d['device_id']} · {d['name_zh']}" for d in devices}
device_id = st.selectbox(
    "Device · 设备", list(labels), format_func=labels.__getitem__, key="inject.device"
)
device = next(d for d in devices if d["device_id"] == device_id)
spec = get_kind(device["kind"])
event_type = st.selectbox("Event type · 事件类型", list(spec.events), key="inject.type")
schema = spec.events[event_type].model_json_schema()

with st.form(f"inject-{device_id}-{event_type}"):
    data = schema_form(schema, key=f"{device_id}.{event_type}")
    submitted = st.form_submit_button("Inject · 注入", type="primary", key="inject.submit")

if submitted:
    try:
        accepted = post(
            "/events/inject", {"device_id": device_id, "type": event_type, "data": data}
        )
    except ApiError as exc:
        st.error(str(exc))
        st.stop()
    st.success(f"Published as event {accepted['event_id']} on {accepted['topic']} · 已发布")
    with st.spinner("Waiting for it to come back through ingest…"):
        deadline = time.monotonic() + 10
        arrived = None
        while time.monotonic() < deadline and arrived is None:
            try:
                arrived = get(f"/events/{accepted['event_id']}")
            except ApiError:
                time.sleep(0.2)
    if arrived:
        st.success("Stored by the backend · 已入库")
        st.json(arrived)
    else:
        st.warning("Not stored yet: check the Data quality of the backend (/health).")
