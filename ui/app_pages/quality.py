"""Data quality: broker connection, ingest lag, sequence gaps, duplicates and dead letters."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from adapters.api_types import DeadLetter
from ui.api import ApiError, call
from ui.common import device_name, fmt_number, fmt_time, now_local
from ui.i18n import t

REFRESH_S = 5

st.title(t("quality.title"))
st.caption(t("quality.caption"))


def status(health: dict[str, Any], quality: dict[str, Any]) -> None:
    healthy = health["status"] == "ok"
    (st.success if healthy else st.error)(
        t("quality.status.ok" if healthy else "quality.status.degraded"),
        icon="✅" if healthy else "⚠️",
    )
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        t("quality.broker"),
        f"🟢 {t('quality.up')}" if quality["broker_connected"] else f"🔴 {t('quality.down')}",
        help=t("quality.broker_help"),
        border=True,
    )
    c2.metric(
        t("quality.database"),
        f"🟢 {t('quality.up')}" if quality["database_ok"] else f"🔴 {t('quality.down')}",
        border=True,
    )
    c3.metric(t("quality.lag"), f"{quality['ingest_lag_s']:.2f} s", border=True)
    c4.metric(t("quality.queue"), fmt_number(health["queue_depth"]), border=True)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(t("quality.received"), fmt_number(quality["received"]))
    c2.metric(t("quality.stored"), fmt_number(quality["stored"]))
    c3.metric(t("quality.duplicates"), fmt_number(quality["duplicates"]))
    c4.metric(t("quality.dead_lettered"), fmt_number(quality["dead_lettered"]))
    c5.metric(t("quality.missing"), fmt_number(quality["missing_total"]))


def gaps(quality: dict[str, Any], names: dict[str, str]) -> None:
    st.subheader(t("quality.gaps"))
    rows = quality["sequence_gaps"]
    if not rows:
        st.success(t("quality.no_gaps"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("col.device"): names.get(g["device_id"], g["device_id"]),
                    t("col.device_id"): g["device_id"],
                    t("col.missing"): g["missing"],
                    t("col.gaps"): ", ".join(
                        f"{gap['after_seq']} → {gap['before_seq']}" for gap in g["gaps"][:10]
                    )
                    + (" …" if len(g["gaps"]) > 10 else ""),
                }
                for g in sorted(rows, key=lambda g: -g["missing"])
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def dead_letters(quality: dict[str, Any], recent: list[DeadLetter]) -> None:
    st.subheader(t("quality.reasons"))
    reasons = quality["dead_letter_reasons"]
    if not reasons and not recent:
        st.success(t("quality.no_dead"))
        return
    if reasons:
        frame = pd.DataFrame([{"reason": r, "count": n} for r, n in reasons.items()]).sort_values(
            "count", ascending=False
        )
        chart = (
            alt.Chart(frame)
            .mark_bar(color="#e45756", cornerRadiusEnd=2)
            .encode(
                x=alt.X("count:Q", title=t("col.count"), axis=alt.Axis(tickMinStep=1)),
                y=alt.Y("reason:N", title=None, sort="-x", axis=alt.Axis(labelLimit=320)),
                tooltip=[
                    alt.Tooltip("reason:N", title=t("col.reason")),
                    alt.Tooltip("count:Q", title=t("col.count")),
                ],
            )
            .properties(height=max(60, 28 * len(frame)))
        )
        st.altair_chart(chart, width="stretch")
    if recent:
        st.subheader(t("quality.recent_dead"))
        st.caption(t("quality.dead_note"))
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("col.time"): fmt_time(d["received_at"]),
                        t("col.topic"): d["topic"],
                        t("col.reason"): d["reason"],
                        t("col.size"): d["size"],
                        t("col.digest"): d["sha256"][:16] + "…",
                    }
                    for d in recent
                ]
            ),
            hide_index=True,
            width="stretch",
        )


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    try:
        health = call(lambda api: api.health())
        quality = call(lambda api: api.quality())
        recent = call(lambda api: api.dead_letters(limit=50))
        names = {d["device_id"]: device_name(d) for d in call(lambda api: api.devices())["data"]}
    except ApiError as exc:
        st.error(str(exc))
        return
    status(health, quality)
    left, right = st.columns(2, gap="large")
    with left:
        gaps(quality, names)
    with right:
        dead_letters(quality, recent)
    st.caption(t("updated", time=now_local().strftime("%H:%M:%S"), every=REFRESH_S))


live()
