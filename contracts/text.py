"""Bilingual text: the one type for every English and Simplified Chinese label on the street.

Kinds, statistics and alarm rules declare a `Text`; the API serves it as `{"en": ..., "zh": ...}`
(pydantic serialises the dataclass), next to the flat `label_en` / `label_zh` and `name_en` /
`name_zh` fields that API clients have always had; the console reads only the bilingual form and
shows it with `text.pick(lang)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Between the two languages where both are shown on one line (headings, the stored alarm title).
SEPARATOR = " · "


@dataclass(frozen=True, slots=True)
class Text:
    """The same words in English (`en`) and Simplified Chinese (`zh`)."""

    en: str
    zh: str

    @classmethod
    def same(cls, text: str) -> Text:
        """Words with one form in both languages (a name, or a text never translated)."""
        return cls(text, text)

    @classmethod
    def from_json(cls, value: Any) -> Text:
        """From the JSON form `{"en": ..., "zh": ...}`."""
        if not isinstance(value, Mapping) or set(value) != {"en", "zh"}:
            raise ValueError(f"not a bilingual text: {value!r}")
        en, zh = value["en"], value["zh"]
        if not isinstance(en, str) or not isinstance(zh, str):
            raise ValueError(f"not a bilingual text: {value!r}")
        return cls(en, zh)

    def to_json(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}

    def pick(self, lang: str) -> str:
        """The text in `lang` ("zh" for Chinese, English otherwise), or in the other language when
        that one is empty."""
        if lang == "zh":
            return self.zh or self.en
        return self.en or self.zh

    def joined(self) -> str:
        """Both languages on one line, "English · 中文"; one of them if the other is empty or the
        same."""
        parts = dict.fromkeys(p for p in (self.en, self.zh) if p)
        return SEPARATOR.join(parts)

    def is_empty(self) -> bool:
        return not (self.en or self.zh)


# No words in either language, e.g. the title of an alarm rule that declares none.
EMPTY = Text("", "")
