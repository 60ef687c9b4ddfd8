"""The console's shared table rows and filters (ui/common.py), outside a Streamlit session."""

from __future__ import annotations

from typing import Any

from ui.common import ALL, event_row, yes_no, yes_no_filter
from ui.i18n import t

EVENT = {
    "ts": "2026-05-01T02:00:00+00:00",
    "type": "entry-granted",
    "injected": True,
    "data": {"method": "card"},
}


def test_an_event_row_names_the_device_only_where_asked() -> None:
    mine = event_row(EVENT)
    theirs = event_row(EVENT, "North gate")
    assert list(mine) == [t("col.time"), t("col.type"), t("col.injected"), t("col.details")]
    assert list(theirs) == [
        t("col.time"),
        t("col.device"),
        t("col.type"),
        t("col.injected"),
        t("col.details"),
    ]
    assert theirs[t("col.device")] == "North gate"
    assert mine[t("col.type")] == "entry-granted" and mine[t("col.injected")] == "💉"
    assert {k: v for k, v in theirs.items() if k != t("col.device")} == mine


class FakeColumn:
    """Records what a page asks of `selectbox` and picks the last option."""

    def selectbox(self, label: str, options: list[str], **kw: Any) -> str:
        self.label, self.options, self.kw = label, options, kw
        return options[-1]


def test_a_yes_no_filter_offers_all_true_false_with_the_page_labels() -> None:
    column = FakeColumn()
    assert yes_no_filter(column, "Alarm", "devices.alarm", yes="With", no="Without") == "false"
    assert column.options == [ALL, "true", "false"]
    shown = [column.kw["format_func"](o) for o in column.options]
    assert shown == [t("all"), "With", "Without"]
    assert column.kw["key"] == "devices.alarm"


def test_a_yes_no_choice_is_a_filter_value_for_the_client() -> None:
    assert (yes_no(ALL), yes_no("true"), yes_no("false")) == (None, True, False)
