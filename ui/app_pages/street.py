"""The street page: devices with availability, and a live feed of events."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.api import ApiError, get

st.title("Lijia Street · 礼嘉街道")
st.caption("Smart community, Liangjiang New Area, Chongqing · 两江新区智慧社区")

AVAILABILITY_ICON = {"online": "🟢 online", "offline": "🔴 offline", "unknown": "⚪ unknown"}


@st.fragment(run_every=2)
def live() -> None:
    try:
        devices = get("/devices")["data"]
        events = get("/events", limit=50)["data"]
    except ApiError as exc:
        st.error(str(exc))
        return
    online = sum(d["availability"] == "online" for d in devices)
    c1, c2 = st.columns(2)
    c1.metric("Devices online · 在线设备", f"{online} / {len(devices)}")
    c2.metric("Latest events · 最新事件", len(events))

    st.subheader("Devices · 设备")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "device": d["device_id"],
                    "name": f"{d['name_en']} · {d['name_zh']}",
                    "kind": d["kind"],
                    "availability": AVAILABILITY_ICON.get(d["availability"], d["availability"]),
                    "why": d["availability_reason"],
                    "last seen": d["last_seen"],
                }
                for d in devices
            ]
        ),
        hide_index=True,
        width="stretch",
    )

    st.subheader("Live events · 实时事件")
    if not events:
        st.info("No events yet. · 暂无事件")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "time": e["ts"],
                    "device": e["device_id"],
                    "type": e["type"],
                    "injected": "💉" if e["injected"] else "",
                    "details": ", ".join(f"{k}={v}" for k, v in e["data"].items()),
                }
                for e in events
            ]
        ),
        hide_index=True,
        width="stretch",
    )


live()
