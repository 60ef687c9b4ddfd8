"""One-click incidents and following an injected event back through ingest to its alarm.

The incidents are the console's only per-kind knowledge: which events stage a typical incident.
Their payloads are checked against the contract by the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from adapters.api_types import AlarmRow, InjectAccepted
from ui.api import ApiError, call
from ui.common import alarm_title, parse_ts, severity_text
from ui.i18n import t

INGEST_WAIT_S = 10.0
ALARM_WAIT_S = 2.0

Events = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Incident:
    key: str  # i18n: inc.<key>, inc.<key>_desc
    icon: str
    kind: str
    events: Callable[[dict[str, Any]], Events]  # device (with its twin) → (type, data) to inject


def _cooler(device: dict[str, Any]) -> Events:
    twin = device.get("telemetry") or {}
    low, high = float(twin.get("band_min_c", 2.0)), float(twin.get("band_max_c", 8.0))
    return [
        ("cooler-fault", {"reason": "compressor"}),
        ("temperature-excursion", {"temperature_c": high + 4.5, "min_c": low, "max_c": high}),
    ]


def _stock_out(device: dict[str, Any]) -> Events:
    stock = (device.get("telemetry") or {}).get("stock") or []
    slot = min(range(len(stock)), key=stock.__getitem__) + 1 if stock else 1
    return [("stock-out", {"slot": slot, "sku": "paracetamol-500", "requested": 1})]


INCIDENTS: list[Incident] = [
    Incident(
        "stranger",
        "🕵️",
        "gate",
        lambda _d: [("entry-denied", {"method": "face", "reason": "unknown-face", "score": 0.31})],
    ),
    Incident("tailgating", "👥", "gate", lambda _d: [("tailgating", {"extra_people": 2})]),
    Incident("cooler", "🌡️", "medicine-cabinet", _cooler),
    Incident("stockout", "📦", "medicine-cabinet", _stock_out),
]


def inject(body: dict[str, Any]) -> InjectAccepted:
    return call(lambda api: api.inject_body(body))


def wait_for_event(event_id: str, timeout: float = INGEST_WAIT_S) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(lambda api: api.event(event_id))
        except ApiError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)


def alarms_from(event: dict[str, Any], timeout: float = ALARM_WAIT_S) -> list[AlarmRow]:
    """Alarms this event raised or counted on: the engine stamps them with the event's time."""
    at = parse_ts(event["ts"])
    deadline = time.monotonic() + timeout
    while True:
        alarms = call(lambda api: api.alarms(device_id=event["device_id"], status="all", limit=50))
        found = [
            a
            for a in alarms
            if at is not None
            and (last := parse_ts(a["last_at"])) is not None
            and abs((last - at).total_seconds()) < 0.001
        ]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.25)


def follow(accepted: InjectAccepted, device_id: str, names: dict[str, str]) -> None:
    st.success(t("inject.published", id=accepted["event_id"], topic=accepted["topic"]))
    with st.spinner(t("inject.waiting")):
        stored = wait_for_event(accepted["event_id"])
    if stored is None:
        st.warning(t("inject.not_stored"))
        return
    st.success(t("inject.stored"))
    try:
        alarms = alarms_from(stored)
    except ApiError as exc:
        st.error(str(exc))
        return
    device = names.get(device_id, device_id)
    for alarm in alarms:
        severity = severity_text(alarm["severity"])
        if alarm["occurrences"] > 1:
            text = t(
                "inject.alarm_counted",
                title=alarm_title(alarm),
                severity=severity,
                n=alarm["occurrences"],
            )
        else:
            text = t(
                "inject.alarm_raised",
                title=alarm_title(alarm),
                severity=severity,
                device=device,
            )
        st.warning(f"#{alarm['id']} · {text}", icon="🚨")
    if not alarms:
        st.info(t("inject.no_alarm"))
    with st.expander(f"{stored['type']} · {stored['event_id']}"):
        st.json(stored)
