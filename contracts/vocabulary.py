"""The words every process shares: severities, statuses, availability, the street's time zone.

Each vocabulary is a `StrEnum`, so a member is its own string in JSON, in the database and in
comparisons (`CommandStatus.SENT == "sent"`): the values are the words the API has always
spoken. Who moves a status from one word to the next is not decided here: commands in
backend/commands.py, alarms in backend/alarms/lifecycle.py.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from enum import StrEnum

# Lijia Street is in Chongqing: China Standard Time all year (no daylight saving).
STREET_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class Severity(StrEnum):
    """How bad an alarm is, most severe first (the order the console and the API sort by)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


SEVERITIES: tuple[Severity, ...] = tuple(Severity)
SEVERITY_RANK: dict[str, int] = {s.value: i for i, s in enumerate(Severity)}


class AlarmStatus(StrEnum):
    """An alarm's life: active → acknowledged → cleared (or active → cleared)."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class NoteAction(StrEnum):
    """What a line of an alarm's history records."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    COMMENT = "comment"


class CommandStatus(StrEnum):
    """An operator command's progress: pending → sent → accepted → one of the final words."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMED_OUT = "timed-out"


# Still waiting for the device (the upkeep times these out).
OPEN_COMMAND_STATUSES = frozenset(
    {CommandStatus.PENDING, CommandStatus.SENT, CommandStatus.ACCEPTED}
)
FINAL_COMMAND_STATUSES = frozenset(CommandStatus) - OPEN_COMMAND_STATUSES


class CommandResultStatus(StrEnum):
    """What a device answers about a command (`CommandResult.status` on the wire)."""

    ACCEPTED = "accepted"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class Availability(StrEnum):
    """A device's twin availability; the retained state topic carries online or offline."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class RunStatus(StrEnum):
    """Where a drill run started from the API stands (`GET /scenarios/runs`)."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    STOPPED = "stopped"
    ERROR = "error"
