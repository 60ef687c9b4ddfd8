"""Small helpers shared by the pages: times in Chongqing (now: the street's time), labels from
the contract, states, filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.api_types import AlarmRow
from contracts.catalogue import KindSpec, load_builtin_kinds
from contracts.text import Text
from contracts.vocabulary import (
    SEVERITIES as SEVERITIES,  # the pages' order of severities
)
from contracts.vocabulary import (
    STREET_TZ,
    Availability,
    Severity,
)
from ui.clock import street_now
from ui.forms import resolve
from ui.i18n import STRINGS, lang, t

SEVERITY_ICON: dict[str, str] = {
    Severity.CRITICAL: "🔴",
    Severity.MAJOR: "🟠",
    Severity.MINOR: "🟡",
    Severity.WARNING: "🔵",
}
AVAILABILITY_ICON: dict[str, str] = {
    Availability.ONLINE: "🟢",
    Availability.OFFLINE: "⚫",
    Availability.UNKNOWN: "⚪",
}


# -- time ---------------------------------------------------------------------------------------
def parse_ts(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def local(value: str | datetime | None) -> datetime | None:
    when = parse_ts(value)
    return when.astimezone(STREET_TZ) if when else None


def fmt_time(value: str | datetime | None) -> str:
    """Chongqing time, e.g. 2026-11-22 07:45:12 (sorts as text)."""
    when = local(value)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def fmt_clock(value: str | datetime | None) -> str:
    """Short: the time of day for the street's today, the date and time before."""
    when = local(value)
    if when is None:
        return ""
    if when.date() == now_local().date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M")


def now_local() -> datetime:
    """The street's time now in Chongqing (ui/clock.py): every page's "now" and "today"."""
    return street_now().astimezone(STREET_TZ)


# -- the contract -------------------------------------------------------------------------------
def kinds() -> dict[str, KindSpec]:
    return dict(sorted(load_builtin_kinds().items()))


def kind_label(kind: str) -> str:
    spec = load_builtin_kinds().get(kind)
    return spec.label.pick(lang()) if spec else kind


def figure_label(figure: dict[str, Any]) -> str:
    """A headline figure's label (from /stats) in the chosen language."""
    return Text.from_json(figure["label"]).pick(lang())


def numeric_fields(schema: dict[str, Any]) -> list[str]:
    """Telemetry fields worth a chart: integers and numbers (not booleans, lists or text)."""
    return [
        name
        for name, raw in schema.get("properties", {}).items()
        if resolve(schema, raw).get("type") in ("integer", "number")
    ]


# -- devices, alarms ----------------------------------------------------------------------------
def device_name(device: dict[str, Any]) -> str:
    return Text.from_json(device["name"]).pick(lang()) or str(device["device_id"])


def device_state(device: dict[str, Any]) -> str:
    """ok | alarm | offline | unknown: what the map and the tables colour by."""
    if device.get("open_alarms"):
        return "alarm"
    availability = device.get("availability")
    return availability if availability in (Availability.OFFLINE, Availability.UNKNOWN) else "ok"


def alarm_title(alarm: AlarmRow) -> str:
    """An alarm's title in the chosen language (the API serves it in both as `title_text`)."""
    return Text.from_json(alarm["title_text"]).pick(lang())


def availability_text(availability: str) -> str:
    icon = AVAILABILITY_ICON.get(availability, "⚪")
    key = f"availability.{availability}"
    return f"{icon} {t(key) if key in STRINGS else availability}"


def severity_text(severity: str | None) -> str:
    if not severity:
        return ""
    key = f"severity.{severity}"
    return f"{SEVERITY_ICON.get(severity, '⚪')} {t(key) if key in STRINGS else severity}"


def status_text(status: str) -> str:
    key = f"status.{status}"
    return t(key) if key in STRINGS else status


def command_status_text(status: str) -> str:
    key = f"cmd.{status}"
    return t(key) if key in STRINGS else status


def details(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items())


def fmt_number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def event_row(event: dict[str, Any], device: str | None = None) -> dict[str, str]:
    """One stored event as a table row: time, the device (where `device` names it), type, an
    injected event's mark, details."""
    row = {t("col.time"): fmt_time(event["ts"])}
    if device is not None:
        row[t("col.device")] = device
    row[t("col.type")] = event["type"]
    row[t("col.injected")] = "💉" if event["injected"] else ""
    row[t("col.details")] = details(event["data"])
    return row


# -- filters ------------------------------------------------------------------------------------
ALL = ""  # a filter's "all" choice: the query leaves its parameter out


def kind_filter(where: Any, label: str, key: str) -> str:
    """A kind, or all kinds; `where` is the page or one of its columns."""
    choice: str = where.selectbox(
        label,
        [ALL, *kinds()],
        format_func=lambda k: kind_label(k) if k else t("all"),
        key=key,
    )
    return choice


def yes_no_filter(where: Any, label: str, key: str, *, yes: str, no: str) -> str:
    """All, only "true" or only "false" (the API's query values), shown as `yes` and `no`."""
    shown = {ALL: t("all"), "true": yes, "false": no}
    choice: str = where.selectbox(label, list(shown), format_func=shown.__getitem__, key=key)
    return choice


def yes_no(choice: str) -> bool | None:
    """A yes/no filter's choice as the typed client takes it: None for all."""
    return {"true": True, "false": False}.get(choice)
