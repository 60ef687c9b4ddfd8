"""Events: the live feed with filters, and the same selection as a CSV download."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from contracts.vocabulary import STREET_TZ
from ui.api import ApiError, call, call_or_show_error
from ui.clock import street_now
from ui.common import (
    ALL,
    device_name,
    event_row,
    kind_filter,
    kinds,
    now_local,
    yes_no,
    yes_no_filter,
)
from ui.i18n import t

REFRESH_S = 3
LIMIT = 200
RANGES: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "today": None,
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "all": None,
}

st.title(t("events.title"))
st.caption(t("events.caption"))


def since(range_key: str) -> datetime | None:
    """The start of the range in UTC, back from the street's now (device time), computed at
    each refresh."""
    if range_key == "all":
        return None
    if range_key == "today":
        start = datetime.combine(now_local().date(), time(0), STREET_TZ)
        return start.astimezone(UTC)
    return street_now() - (RANGES[range_key] or timedelta())


def filters(devices: list[dict[str, Any]]) -> dict[str, Any]:
    c1, c2, c3, c4, c5 = st.columns([2, 3, 2, 1.6, 1.6])
    kind = kind_filter(c1, t("col.kind"), "events.kind")
    names = {d["device_id"]: device_name(d) for d in devices if not kind or d["kind"] == kind}
    device_id = c2.selectbox(
        t("col.device"),
        [ALL, *names],
        format_func=lambda i: f"{names[i]} · {i}" if i else t("all"),
        key="events.device",
    )
    specs = [kinds()[kind]] if kind else list(kinds().values())
    types = sorted({name for spec in specs for name in spec.events})
    event_type = c3.selectbox(
        t("events.type"),
        [ALL, *types],
        format_func=lambda e: e or t("all"),
        key="events.type",
    )
    injected = yes_no_filter(
        c4,
        t("events.injected"),
        "events.injected",
        yes=t("events.injected_only"),
        no=t("events.real_only"),
    )
    range_key = c5.selectbox(
        t("events.range"), list(RANGES), format_func=lambda r: t(f"range.{r}"), key="events.range"
    )
    return {
        "kind": kind or None,
        "device_id": device_id or None,
        "type": event_type or None,
        "injected": yes_no(injected),
        "range": range_key or "all",
    }


def query(chosen: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in chosen.items() if k != "range"}
    return {**params, "since": since(chosen["range"])}


def download(chosen: dict[str, Any]) -> None:
    def csv() -> str:
        try:
            return call(lambda api: api.events_csv(**query(chosen)))
        except ApiError as exc:
            return str(exc)

    st.download_button(
        t("events.csv"),
        data=csv,
        file_name=f"lijia-events-{now_local():%Y%m%d-%H%M%S}.csv",
        mime="text/csv",
        icon="⬇️",
        help=t("events.csv_help"),
        key="events.csv",
    )


@st.fragment(run_every=REFRESH_S)
def feed(chosen: dict[str, Any], names: dict[str, str]) -> None:
    page = call_or_show_error(lambda api: api.events(limit=LIMIT, **query(chosen)))
    if page is None:
        return
    events = page["data"]
    stamp = t("updated", time=now_local().strftime("%H:%M:%S"), every=REFRESH_S)
    if not events:
        st.info(t("events.none"))
        st.caption(stamp)
        return
    st.dataframe(
        pd.DataFrame([event_row(e, names.get(e["device_id"], e["device_id"])) for e in events]),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(events), 640),
        column_config={
            t("col.time"): st.column_config.TextColumn(width="medium"),
            t("col.device"): st.column_config.TextColumn(width="medium"),
            t("col.type"): st.column_config.TextColumn(width="medium"),
            t("col.injected"): st.column_config.TextColumn(width="small"),
            t("col.details"): st.column_config.TextColumn(width="large"),
        },
    )
    st.caption(f"{t('events.shown', n=len(events))} · {stamp}")


try:
    devices = call(lambda api: api.devices())["data"]
except ApiError as exc:
    st.error(str(exc))
    st.stop()

chosen = filters(devices)
download(chosen)
feed(chosen, {d["device_id"]: device_name(d) for d in devices})
