"""What a kind of device is (KindSpec, StatSpec) and the registry each kind module registers in.

Kept apart from contracts/catalogue.py, which imports the kind modules to load them: the kind
modules import this one, so the two never import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from contracts.alarms import AlarmRule, matches
from contracts.text import Text


@dataclass(frozen=True)
class StatSpec:
    """A headline figure for the console: events of `event_type` counted per hour, or the sum of
    a telemetry field over the kind's devices (their latest values)."""

    name: str
    label: Text
    event_type: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    # Upper bounds on numeric fields, e.g. {"duration_ms": 3000} for "entries within 3 s".
    at_most: dict[str, float] = field(default_factory=dict)
    telemetry_field: str | None = None

    def counts(self, event_type: str, data: dict[str, Any]) -> bool:
        if self.event_type != event_type or not matches(data, self.where):
            return False
        for key, bound in self.at_most.items():
            value = data.get(key)
            if not isinstance(value, (int, float)) or value > bound:
                return False
        return True


@dataclass(frozen=True)
class KindSpec:
    """Everything the platform needs to know about one kind of device."""

    kind: str
    label: Text
    telemetry: type[BaseModel]
    commands: dict[str, type[BaseModel]]
    events: dict[str, type[BaseModel]]
    # Event types that concern a resident (purged after the retention period).
    personal_events: frozenset[str] = field(default_factory=frozenset)
    alarms: tuple[AlarmRule, ...] = ()
    stats: tuple[StatSpec, ...] = ()

    def event_model(self, event_type: str) -> type[BaseModel]:
        try:
            return self.events[event_type]
        except KeyError as exc:
            raise KeyError(f"kind {self.kind!r} has no event type {event_type!r}") from exc

    def command_model(self, name: str) -> type[BaseModel]:
        try:
            return self.commands[name]
        except KeyError as exc:
            raise KeyError(f"kind {self.kind!r} has no command {name!r}") from exc

    def rule_title(self, rule: str) -> Text | None:
        """The title of this kind's alarm rule `rule`; None if it declares no such rule or no
        title for it."""
        for declared in self.alarms:
            if declared.rule == rule and not declared.title.is_empty():
                return declared.title
        return None

    def json_schemas(self) -> dict[str, Any]:
        return {
            "events": {t: m.model_json_schema() for t, m in self.events.items()},
            "telemetry": self.telemetry.model_json_schema(),
            "commands": {n: m.model_json_schema() for n, m in self.commands.items()},
        }


CATALOGUE: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    CATALOGUE[spec.kind] = spec
    return spec
