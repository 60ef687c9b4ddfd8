"""Bilingual text: one type for the catalogue's labels and titles, the API and the console."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from backend.api.routes.alarms import AlarmPublic
from contracts.alarms import OFFLINE_RULE
from contracts.catalogue import load_builtin_kinds, rule_title
from contracts.text import EMPTY, SEPARATOR, Text


def test_pick_chooses_the_language_and_falls_back_to_the_other() -> None:
    text = Text("Tailgating", "尾随进入")
    assert text.pick("en") == "Tailgating"
    assert text.pick("zh") == "尾随进入"
    assert text.pick("fr") == "Tailgating"
    assert Text("Only English", "").pick("zh") == "Only English"
    assert Text("", "只有中文").pick("en") == "只有中文"
    assert EMPTY.pick("en") == "" and EMPTY.is_empty()


def test_joined_shows_both_languages_once() -> None:
    assert Text("Tailgating", "尾随进入").joined() == "Tailgating · 尾随进入"
    assert Text.same("gate-north").joined() == "gate-north"
    assert Text("Only English", "").joined() == "Only English"
    assert EMPTY.joined() == ""


def test_json_form_round_trips_through_pydantic_and_by_hand() -> None:
    class Holder(BaseModel):
        label: Text

    text = Text("Smart book house", "智慧书屋")
    assert text.to_json() == {"en": "Smart book house", "zh": "智慧书屋"}
    assert Holder(label=text).model_dump(mode="json") == {"label": text.to_json()}
    assert Holder.model_validate({"label": text.to_json()}).label == text
    assert TypeAdapter(Text).validate_json('{"en": "a", "zh": "b"}') == Text("a", "b")
    assert Text.from_json(text.to_json()) == text


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "Tailgating · 尾随进入",
        {"en": "a"},
        {"en": "a", "zh": 1},
        {"en": "a", "zh": "b", "x": ""},
    ],
)
def test_from_json_refuses_anything_else(bad: Any) -> None:
    with pytest.raises(ValueError):
        Text.from_json(bad)


def test_the_catalogue_declares_every_label_and_title_in_both_languages() -> None:
    for kind, spec in load_builtin_kinds().items():
        texts = [spec.label, *(s.label for s in spec.stats), *(r.title for r in spec.alarms)]
        for text in texts:
            assert text.en and text.zh, kind
            assert SEPARATOR not in text.en + text.zh, (kind, text)  # no "English · 中文" left
        for rule in spec.alarms:
            assert rule_title(kind, rule.rule) == rule.title


def test_unknown_kinds_and_rules_have_no_title() -> None:
    assert rule_title("gate", OFFLINE_RULE) is None
    assert rule_title("no-such-kind", "tailgating") is None


def _alarm(kind: str, rule: str, title: str) -> AlarmPublic:
    now = datetime.now(UTC)
    return AlarmPublic(
        id=1, rule=rule, device_id="gate-north", kind=kind, severity="major", title=title,
        status="active", occurrences=1, raised_at=now, last_at=now, updated_at=now,
        acknowledged_by=None, acknowledged_at=None, cleared_by=None, cleared_at=None,
        clear_reason=None, details={},
    )  # fmt: skip


def test_the_api_serves_an_alarms_title_in_both_languages_from_its_rule() -> None:
    served = _alarm("gate", "tailgating", "Tailgating · 尾随进入").model_dump(mode="json")
    assert served["title"] == "Tailgating · 尾随进入"  # the stored title, as before
    assert served["title_text"] == {"en": "Tailgating", "zh": "尾随进入"}
    offline = _alarm("gate", OFFLINE_RULE, "Device offline too long").model_dump(mode="json")
    assert offline["title_text"] == Text.same("Device offline too long").to_json()
