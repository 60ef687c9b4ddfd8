"""The command lifecycle: create, mark sent (or not published), apply device results, time out.

The one place that moves a command from one status (contracts/vocabulary.py) to the next:
pending → sent | failed (publishing) → accepted → succeeded | rejected | failed (the device's
answers) or timed-out (no final answer in time).

Two clocks (docs/architecture.md): a command's timeline (`created_at`, `updated_at`, every
status change) is street time, read from the backend's street clock when the change happens
(a device's answer: when it reaches us), so it reads in order whatever the device's own clock
says. Its delivery timeout is machinery, on the wall clock: `deliver_by` (wall) is set when it
is created, and upkeep times it out once the wall clock passes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from backend.models import CommandRecord, table
from contracts.envelope import CommandResult
from contracts.vocabulary import (
    OPEN_COMMAND_STATUSES,
    CommandResultStatus,
    CommandStatus,
)

COMMAND = table(CommandRecord)

# What a device's answer (`CommandResult.status`) makes of the command.
RESULT_TO_STATUS: dict[str, CommandStatus] = {
    CommandResultStatus.ACCEPTED: CommandStatus.ACCEPTED,
    CommandResultStatus.DONE: CommandStatus.SUCCEEDED,
    CommandResultStatus.REJECTED: CommandStatus.REJECTED,
    CommandResultStatus.FAILED: CommandStatus.FAILED,
}

TIMED_OUT_REASON = "no result from the device in time"

_APPLY_RESULT = (
    update(COMMAND)
    .where(
        COMMAND.c.command_id == bindparam("b_command_id"),
        COMMAND.c.device_id == bindparam("b_device_id"),
    )
    .values(status=bindparam("status"), reason=bindparam("reason"), updated_at=bindparam("at"))
)


def create(
    session: Session,
    *,
    command_id: str,
    device_id: str,
    name: str,
    params: dict[str, Any],
    now: datetime,
    timeout_s: float,
) -> CommandRecord:
    """A new command, pending until it is published; committed, so a result can find it.
    `now` is street time; the delivery deadline is `timeout_s` wall seconds from now."""
    record = CommandRecord(
        command_id=command_id,
        device_id=device_id,
        name=name,
        params=params,
        status=CommandStatus.PENDING,
        created_at=now,
        updated_at=now,
        deliver_by=datetime.now(UTC) + timedelta(seconds=timeout_s),
    )
    session.add(record)
    session.commit()
    return record


def _advance_from_pending(
    session: Session, command_id: str, status: CommandStatus, reason: str | None, now: datetime
) -> None:
    # Only from pending: the device's result may already have been ingested.
    session.exec(
        update(CommandRecord)
        .where(col(CommandRecord.command_id) == command_id)
        .where(col(CommandRecord.status) == CommandStatus.PENDING)
        .values(status=status, reason=reason, updated_at=now)
    )
    session.commit()


def mark_sent(session: Session, command_id: str, now: datetime) -> None:
    """The broker took the command (at street time `now`)."""
    _advance_from_pending(session, command_id, CommandStatus.SENT, None, now)


def mark_not_published(session: Session, command_id: str, error: str, now: datetime) -> None:
    """The command never left the backend: it failed."""
    _advance_from_pending(session, command_id, CommandStatus.FAILED, f"not published: {error}", now)


def apply_results(conn: Connection, results: Iterable[tuple[str, CommandResult, datetime]]) -> None:
    """Devices' answers, each `(device_id, result, street time it reached us)`: a command takes
    the status its latest answer maps to (a result naming another device's command changes
    nothing)."""
    rows = [
        {
            "b_command_id": result.command_id,
            "b_device_id": device_id,
            "status": RESULT_TO_STATUS[result.status],
            "reason": result.reason,
            "at": ts,
        }
        for device_id, result, ts in results
    ]
    # One statement per answer, in arrival order: two answers to one command in a batch
    # (accepted, then done) must end on the later.
    for row in rows:
        conn.execute(_APPLY_RESULT, row)


def expire(
    conn: Connection,
    timeout_s: float,
    now: datetime,
    wall: datetime | None = None,
) -> int:
    """Commands with no final answer by their wall-clock `deliver_by` end as timed-out (at
    street time `now`); returns how many. Commands stored before `deliver_by` existed have
    none: theirs is `created_at` plus the timeout."""
    wall = wall or datetime.now(UTC)
    res = conn.execute(
        update(COMMAND)
        .where(
            COMMAND.c.status.in_(sorted(OPEN_COMMAND_STATUSES)),
            or_(
                COMMAND.c.deliver_by < wall,
                and_(
                    COMMAND.c.deliver_by.is_(None),
                    COMMAND.c.created_at < wall - timedelta(seconds=timeout_s),
                ),
            ),
        )
        .values(status=CommandStatus.TIMED_OUT, reason=TIMED_OUT_REASON, updated_at=now)
    )
    return int(res.rowcount or 0)
