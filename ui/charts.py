"""Altair charts of the console (besides the map): hourly activity, telemetry series."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from adapters.api_types import TelemetryPoint
from ui.common import local
from ui.i18n import t

HOURS = [f"{h:02d}" for h in range(24)]
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d"]


def hourly_frame(hourly: list[dict[str, Any]], labels: dict[tuple[str, str], str]) -> pd.DataFrame:
    """/stats `hourly` rows → kind, figure label, hour of day in Chongqing, count."""
    rows = []
    for row in hourly:
        when = local(row["hour"])
        if when is None:
            continue
        rows.append(
            {
                "kind": row["kind"],
                "figure": labels.get((row["kind"], row["stat"]), row["stat"]),
                "hour": f"{when.hour:02d}",
                "count": row["count"],
            }
        )
    frame = pd.DataFrame(rows, columns=["kind", "figure", "hour", "count"])
    return frame.groupby(["kind", "figure", "hour"], as_index=False)["count"].sum()


def activity_chart(frame: pd.DataFrame, title: str) -> alt.Chart:
    """One kind's figures per hour of the day: grouped bars, one colour per figure."""
    figures = sorted(frame["figure"].unique())
    many = len(figures) > 1
    encoding: dict[str, Any] = {
        "x": alt.X(
            "hour:O",
            scale=alt.Scale(domain=HOURS),
            title=None,
            axis=alt.Axis(labelAngle=0, values=HOURS[::3]),
        ),
        "y": alt.Y("count:Q", title=None, axis=alt.Axis(tickMinStep=1)),
        "color": alt.Color(
            "figure:N",
            scale=alt.Scale(domain=figures, range=PALETTE[: len(figures)]),
            legend=None,  # drawn by `legend_html`: Streamlit's theme squeezes the plot for it
        ),
        "tooltip": [
            alt.Tooltip("hour:O", title=t("col.hour")),
            alt.Tooltip("figure:N", title=t("col.field")),
            alt.Tooltip("count:Q", title=t("col.count")),
        ],
    }
    if many:
        encoding["xOffset"] = alt.XOffset("figure:N", sort=figures)
    chart: alt.Chart = (
        alt.Chart(frame, title=alt.Title(title, fontSize=13, anchor="start"))
        .mark_bar(cornerRadiusTopLeft=2, cornerRadiusTopRight=2)
        .encode(**encoding)
        .properties(height=200)
    )
    return chart


def legend_html(figures: list[str]) -> str:
    """A one-line colour key matching `activity_chart`'s colours."""
    return " &nbsp; ".join(
        f"<span style='color:{PALETTE[i % len(PALETTE)]}'>■</span> {name}"
        for i, name in enumerate(sorted(figures))
    )


def telemetry_chart(points: list[TelemetryPoint], field: str) -> alt.LayerChart:
    """Average per bucket as a line, min–max as a band."""
    frame = pd.DataFrame(
        [
            {
                "time": local(p["bucket"]),
                "avg": p["avg"],
                "min": p["min"],
                "max": p["max"],
                "samples": p["samples"],
            }
            for p in points
        ]
    )
    frame["time"] = pd.to_datetime(frame["time"].map(lambda d: d.replace(tzinfo=None)))
    base = alt.Chart(frame).encode(
        x=alt.X(
            "time:T",
            title=None,
            axis=alt.Axis(format="%H:%M", labelAngle=0, tickMinStep=60_000, tickCount=6),
        )
    )
    band = base.mark_area(opacity=0.18, color="#4c78a8").encode(
        y=alt.Y("min:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=",.4~g")),
        y2="max:Q",
    )
    line = base.mark_line(point=len(frame) < 40, color="#4c78a8").encode(
        y="avg:Q",
        tooltip=[
            alt.Tooltip("time:T", format="%Y-%m-%d %H:%M", title=t("col.time")),
            alt.Tooltip("avg:Q", format=".2f"),
            alt.Tooltip("min:Q", format=".2f"),
            alt.Tooltip("max:Q", format=".2f"),
            alt.Tooltip("samples:Q"),
        ],
    )
    chart: alt.LayerChart = alt.LayerChart(
        layer=[band, line], title=alt.Title(field, fontSize=13, anchor="start")
    ).properties(height=200)
    return chart
