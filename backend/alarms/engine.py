"""The alarm engine: runs the kinds' rules in the ingest transaction and sweeps offline devices.

Rules are declared in contracts/alarms.py and evaluated by backend/alarms/rules.py; conditions
that time alone creates (a device offline too long) are found by the upkeep's sweep.

Every time is street time (backend/street_clock.py): `now` is the street clock the engine is
given. Quiet periods and deadlines pass on the device's own clock (its messages' `ts`: street
time for a simulated device; injected events are stamped with street time too), so a backlog
replays them as they happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from backend.alarms import lifecycle, rules
from backend.alarms.batch import BatchView
from backend.alarms.lifecycle import SYSTEM, AlarmChange
from backend.alarms.rules import Clear, Memory, Observed, Occur
from backend.models import Device, table
from contracts.alarms import OFFLINE_RULE, OFFLINE_SEVERITY, BurstRule
from contracts.vocabulary import Availability

DEVICE = table(Device)
OFFLINE_TITLE = "Device offline too long"


class AlarmEngine:
    """Stateless between calls: everything it remembers lives in the database."""

    def __init__(
        self,
        offline_after_s: float = 300.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        continuous_since: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.offline_after_s = offline_after_s
        self.now = now  # the street's clock
        self.continuous_since = continuous_since

    def observe(self, conn: Connection, items: list[Observed]) -> list[AlarmChange]:
        """The rules' decisions on a batch of newly stored envelopes, persisted."""
        changes: list[AlarmChange] = []
        latest: dict[str, Observed] = {}
        view = BatchView(conn, {it.device_id: it.kind for it in items}, self.now())
        for item in items:
            for rule in rules.rules_acting_on(item.kind, item.channel, item.type):
                window = []
                if isinstance(rule, BurstRule):
                    span = rules.burst_window(rule, item)
                    if span is not None:
                        window = view.burst_window(item.device_id, rule.event_type, *span)
                memory = view.memory(rule.rule, item.device_id)
                decisions = rules.on_message(rule, item, memory, window)
                changes += view.apply(rule, item.device_id, item.kind, decisions)
            if item.device_id not in latest or item.ts > latest[item.device_id].ts:
                latest[item.device_id] = item
        # Time passes on the device's own clock (accelerated simulations included).
        for item in latest.values():
            for rule in filter(rules.watches_time, rules.rules_for(item.kind)):
                decisions = rules.on_time(rule, item.ts, view.memory(rule.rule, item.device_id))
                changes += view.apply(rule, item.device_id, item.kind, decisions)
        view.flush()
        return changes

    def availability(self, conn: Connection, device_id: str, status: str) -> list[AlarmChange]:
        """A device's availability changed: back online ends its offline alarm."""
        if status != Availability.ONLINE:
            return []
        alarm = lifecycle.find_open(conn, OFFLINE_RULE, device_id)
        memory = Memory(alarm.last_at if alarm is not None else None)
        out: list[AlarmChange] = []
        for decision in rules.on_availability(status, memory):
            if isinstance(decision, Clear) and alarm is not None:
                out.append(
                    lifecycle.clear(conn, alarm, by=SYSTEM, reason=decision.reason, now=self.now())
                )
        return out

    def sweep(self, conn: Connection, now: datetime | None = None) -> list[AlarmChange]:
        """Conditions time alone creates, on street time: devices offline for too long. Only
        over continuous street time: right after a jump (hours skipped, nothing published by
        design) every device would look offline for hours."""
        now = now or self.now()
        cutoff = now - timedelta(seconds=self.offline_after_s)
        since = self.continuous_since()
        if since is not None and since > cutoff:
            return []
        rows = conn.execute(
            select(DEVICE.c.device_id, DEVICE.c.kind, DEVICE.c.availability_reason).where(
                DEVICE.c.availability == Availability.OFFLINE,
                DEVICE.c.availability_changed_at < cutoff,
            )
        ).all()
        out: list[AlarmChange] = []
        for row in rows:
            alarm = lifecycle.find_open(conn, OFFLINE_RULE, row.device_id)
            memory = Memory(alarm.last_at if alarm is not None else None)
            decision = rules.offline_too_long(row.availability_reason, now, memory)
            if isinstance(decision, Occur) and alarm is not None:
                lifecycle.occur_again(alarm, decision.at, decision.details)
                lifecycle.write_occurrences(conn, [alarm], now)
                continue
            change = lifecycle.raise_new(
                conn,
                rule=OFFLINE_RULE,
                device_id=row.device_id,
                kind=row.kind,
                severity=OFFLINE_SEVERITY,
                title=OFFLINE_TITLE,
                at=now,
                details={"reason": row.availability_reason},
                now=now,
            )
            if change is not None:
                out.append(change)
        return out
