"""Alarms: what rules decide, how an alarm lives, and the engine ingest and the upkeep call.

Pure rule evaluation (rules), the lifecycle in SQL (lifecycle), one ingest batch's view (batch)
and the engine that ties them to ingest and the upkeep (engine).
"""

from backend.alarms.engine import AlarmEngine
from backend.alarms.lifecycle import (
    SYSTEM,
    AlarmChange,
    AlarmNotFound,
    OpenAlarm,
    TransitionRefused,
)
from backend.alarms.rules import Observed, rules_acting_on, rules_for

__all__ = [
    "SYSTEM",
    "AlarmChange",
    "AlarmEngine",
    "AlarmNotFound",
    "Observed",
    "OpenAlarm",
    "TransitionRefused",
    "rules_acting_on",
    "rules_for",
]
