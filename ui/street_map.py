"""The schematic map of Lijia Street, drawn locally with Altair (no map tiles, works offline).

The canvas is the fleet file's 1000 × 1000 grid, north up (y grows southwards). Areas and roads
are a sketch of the street around the fleet's positions; devices are placed by their x/y.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from contracts.text import Text
from ui.common import device_name, device_state, kind_label, kinds
from ui.i18n import lang, t

CANVAS = 1000
STATE_COLOURS = {"ok": "#2e9e44", "alarm": "#d62728", "offline": "#7f7f7f", "unknown": "#c4c4c4"}
STAR = (
    "M0,-1L0.24,-0.33L0.95,-0.31L0.39,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.39,0.12L-0.95,-0.31"
    "L-0.24,-0.33Z"
)
KIND_SHAPES = ["circle", "square", "diamond", "triangle-up", "triangle-down", "cross", STAR]

# (name, x0, y0, x1, y1, fill, where the name goes: see _label_anchor)
AREAS: list[tuple[Text, int, int, int, int, str, str]] = [
    (Text("Lijia Garden", "礼嘉花园"), 90, 120, 445, 820, "#efe4cf", "top"),
    (Text("Longtang Community", "龙塘社区"), 575, 95, 850, 250, "#efe4cf", "above"),
    (Text("Tianyue Residence", "天悦小区"), 760, 330, 960, 620, "#efe4cf", "above"),
    (Text("Civic centre", "便民服务中心"), 510, 440, 655, 600, "#dbe6f2", "below"),
    (Text("Primary school", "实验小学"), 515, 680, 640, 790, "#f5ecc4", "below"),
    (Text("Middle school", "礼嘉中学"), 330, 865, 455, 965, "#f5ecc4", "left"),
    (Text("Lijia Smart Park", "礼嘉智慧公园"), 690, 700, 975, 965, "#d5ebcc", "bottom"),
]
# (x0, y0, x1, y1): Lijia Avenue and the side roads to the gates.
ROADS: list[tuple[int, int, int, int]] = [
    (460, 0, 500, 1000),  # Lijia Avenue, north-south
    (0, 88, 460, 108),  # north road (North Gate)
    (0, 832, 1000, 852),  # south road (South Gate, schools, park)
    (50, 108, 70, 832),  # west road (West Gate)
    (500, 421, 760, 439),  # to Tianyue's East Gate
    (500, 258, 640, 274),  # to Longtang's Main Gate
    (500, 640, 1000, 656),  # east road (Tianyue South Gate)
]
AVENUE = Text("Lijia Avenue", "礼嘉大道")


def _scales() -> tuple[alt.Scale, alt.Scale]:
    return (
        alt.Scale(domain=[0, CANVAS], nice=False, zero=False),
        alt.Scale(domain=[0, CANVAS], nice=False, zero=False, reverse=True),
    )


def _label_anchor(x0: int, y0: int, x1: int, y1: int, where: str) -> dict[str, Any]:
    """Where an area's name goes, so that it does not sit under a device."""
    if where == "above":
        return {"lx": x0 + 4, "ly": y0 - 8, "align": "left", "baseline": "bottom"}
    if where == "below":
        return {"lx": x0 + 4, "ly": y1 + 8, "align": "left", "baseline": "top"}
    if where == "bottom":
        return {"lx": x0 + 12, "ly": y1 - 12, "align": "left", "baseline": "bottom"}
    if where == "left":
        return {"lx": x0 - 10, "ly": (y0 + y1) / 2, "align": "right", "baseline": "middle"}
    return {"lx": x0 + 12, "ly": y0 + 12, "align": "left", "baseline": "top"}


def _background() -> list[alt.Chart]:
    xs, ys = _scales()
    areas = pd.DataFrame(
        [
            {
                "x": x0,
                "y": y0,
                "x2": x1,
                "y2": y1,
                "fill": fill,
                "label": name.pick(lang()),
                **_label_anchor(x0, y0, x1, y1, where),
            }
            for name, x0, y0, x1, y1, fill, where in AREAS
        ]
    )
    roads = pd.DataFrame([{"x": x0, "y": y0, "x2": x1, "y2": y1} for x0, y0, x1, y1 in ROADS])
    ground = (
        alt.Chart(areas)
        .mark_rect(cornerRadius=10, stroke="#d2c4a8", strokeWidth=1)
        .encode(
            x=alt.X("x:Q", scale=xs, axis=None),
            y=alt.Y("y:Q", scale=ys, axis=None),
            x2="x2:Q",
            y2="y2:Q",
            fill=alt.Fill("fill:N", scale=None),
            tooltip=alt.value(None),
        )
    )
    road = (
        alt.Chart(roads)
        .mark_rect(color="#ffffff", stroke="#d9d9d9", strokeWidth=1)
        .encode(x="x:Q", y="y:Q", x2="x2:Q", y2="y2:Q", tooltip=alt.value(None))
    )
    labels = [
        alt.Chart(group)
        .mark_text(align=align, baseline=baseline, fontSize=12, fontWeight="bold", color="#7a6a4f")
        .encode(x="lx:Q", y="ly:Q", text="label:N")
        for (align, baseline), group in areas.groupby(["align", "baseline"])
    ]
    avenue = (
        alt.Chart(pd.DataFrame([{"x": 480, "y": 360, "label": AVENUE.pick(lang())}]))
        .mark_text(angle=270, fontSize=11, fontStyle="italic", color="#8a8a8a")
        .encode(x="x:Q", y="y:Q", text="label:N")
    )
    return [ground, road, *labels, avenue]


def devices_frame(devices: list[dict[str, Any]]) -> pd.DataFrame:
    other = "zh" if lang() == "en" else "en"  # the tooltip's second name
    return pd.DataFrame(
        [
            {
                "x": d["x"],
                "y": d["y"],
                "device_id": d["device_id"],
                "name": device_name(d),
                "other_name": Text.from_json(d["name"]).pick(other),
                "kind": kind_label(d["kind"]),
                "state": t(f"state.{device_state(d)}"),
                "alarms": d.get("open_alarms", 0),
            }
            for d in devices
        ],
        columns=["x", "y", "device_id", "name", "other_name", "kind", "state", "alarms"],
    )


def _kind_shapes() -> tuple[list[str], list[str]]:
    """Each kind keeps its shape whatever the language: shapes follow the catalogue's order."""
    labels = [kind_label(k) for k in kinds()]
    return labels, [KIND_SHAPES[i % len(KIND_SHAPES)] for i in range(len(labels))]


def street_map(devices: list[dict[str, Any]], height: int = 600) -> alt.LayerChart:
    """The street with every device, coloured by state and shaped by kind."""
    frame = devices_frame(devices)
    states = ["ok", "alarm", "offline", "unknown"]
    state_scale = alt.Scale(
        domain=[t(f"state.{s}") for s in states], range=[STATE_COLOURS[s] for s in states]
    )
    shown = set(frame["kind"])
    kind_domain, kind_range = _kind_shapes()
    kind_range = [r for k, r in zip(kind_domain, kind_range, strict=True) if k in shown]
    kind_domain = [k for k in kind_domain if k in shown]
    tooltip = [
        alt.Tooltip("name:N", title=t("map.name")),
        alt.Tooltip("other_name:N", title=t("map.other_name")),
        alt.Tooltip("device_id:N", title=t("col.device_id")),
        alt.Tooltip("kind:N", title=t("map.kind")),
        alt.Tooltip("state:N", title=t("map.state")),
        alt.Tooltip("alarms:Q", title=t("col.alarms")),
    ]
    halo = (
        alt.Chart(frame[frame["alarms"] > 0])
        .mark_circle(size=900, opacity=0.22, color=STATE_COLOURS["alarm"])
        .encode(x="x:Q", y="y:Q")
    )
    marks = (
        alt.Chart(frame)
        .mark_point(filled=True, size=200, opacity=1, stroke="#ffffff", strokeWidth=1.5)
        .encode(
            x="x:Q",
            y="y:Q",
            color=alt.Color(
                "state:N",
                scale=state_scale,
                legend=alt.Legend(title=t("map.state"), orient="bottom", direction="vertical"),
            ),
            shape=alt.Shape(
                "kind:N",
                scale=alt.Scale(domain=kind_domain, range=kind_range or ["circle"]),
                legend=alt.Legend(
                    title=t("map.kind"),
                    orient="bottom",
                    direction="horizontal",
                    columns=2,
                    labelLimit=240,
                    symbolFillColor="#6b6b6b",
                    symbolStrokeColor="#6b6b6b",
                ),
            ),
            tooltip=tooltip,
        )
    )
    chart: alt.LayerChart = (
        alt.layer(*_background(), halo, marks)
        .properties(width="container", height=height, background="#f7f5f0")
        .configure_view(stroke=None)
        .configure_legend(labelFontSize=12, titleFontSize=12, symbolSize=120)
    )
    return chart
