"""Plan one batch from its classified messages: the event rows to insert, the twin columns to
set, the command results to apply and the dead letters to keep; and the pure steps persisting
it needs (replay verdicts, redeliveries folded, hourly counts, alarm observations)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.alarms import Observed
from backend.ingest.classify import (
    Incoming,
    RetainedError,
    Rules,
    channel_of,
    classify,
    is_clear,
)
from backend.ingest.dead_letters import DeadLetters
from contracts.catalogue import load_builtin_kinds
from contracts.envelope import CommandResult, Envelope
from contracts.topics import Channel
from contracts.validation import ContractError

# One row of the event table, as inserted.
EventRow = dict[str, Any]
# (device_id, stat, hour, kind) of the hourly headline counts.
StatKey = tuple[str, str, datetime, str]


@dataclass
class BatchPlan:
    """Everything one batch will write, decided before the transaction opens."""

    # In arrival order; a redelivery appears as often as it arrived (counted as a duplicate).
    events: list[EventRow] = field(default_factory=list)
    # Event id -> the message that carried it, to dead-letter the message if it is a replay.
    origin: dict[str, Incoming] = field(default_factory=dict)
    # Device id -> twin columns to set; empty when only injected events came from the device.
    twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each device answer with the street time it reached us (a command's timeline is on the
    # backend's street clock, in order, whatever the device's own clock says).
    command_results: list[tuple[Envelope, CommandResult, datetime]] = field(default_factory=list)
    # Messages refused by the contract; replays are added when persisting (they need the table).
    dead: DeadLetters = field(default_factory=DeadLetters)
    # Topics whose retained copy at the broker is to be cleared once this batch is committed.
    clear_retained: list[str] = field(default_factory=list)
    # Empty retained messages (clears): acknowledged, stored nowhere.
    clears_ignored: int = 0


def plan_batch(batch: list[Incoming], rules: Rules) -> BatchPlan:
    plan = BatchPlan()
    for item in batch:
        if is_clear(item):
            plan.clears_ignored += 1
            continue
        try:
            msg = classify(item, rules)
        except RetainedError as exc:
            plan.dead.add(item, exc.reason)
            if item.topic not in plan.clear_retained:
                plan.clear_retained.append(item.topic)
            continue
        except ContractError as exc:
            plan.dead.add(item, exc.reason)
            # Retained garbage on `state` has replaced the device's availability at the broker,
            # and every new subscription would be handed it again: cleared too. (MQTT 5 only: on
            # 3.1.1 the flag also marks queued messages, not what the broker keeps.)
            if (
                rules.reject_retained
                and item.retained
                and channel_of(item.topic) is Channel.STATE
                and item.topic not in plan.clear_retained
            ):
                plan.clear_retained.append(item.topic)
            continue
        twin = plan.twins.setdefault(msg.topic.device_id, {})
        # Twin times are street time at receipt: silence and offline-too-long are street facts.
        street = item.street_at
        if msg.availability is not None:
            twin["availability"] = msg.availability.status
            twin["availability_reason"] = msg.availability.reason
            twin["availability_changed_at"] = street
            continue
        env = msg.envelope
        assert env is not None
        plan.origin[env.event_id] = item
        plan.events.append(event_row(env, msg.topic.channel, item))
        if not env.injected:
            twin["last_seen"] = street
            twin["last_seq"] = max(env.seq, twin.get("last_seq", -1))
            judged = (
                rules.skew.judge(env.device_id, env.ts, street, item.clock) if rules.skew else None
            )
            if judged is not None:
                twin["clock_skew_s"], twin["clock_skewed"] = judged.skew_s, judged.skewed
        if msg.topic.channel is Channel.TELEMETRY:
            twin["telemetry"] = env.data
        elif msg.topic.channel is Channel.COMMAND_RESULTS:
            result = CommandResult.model_validate(env.data)
            plan.command_results.append((env, result, street))
    return plan


def quarantine_plan(item: Incoming, reason: str) -> BatchPlan:
    """A plan that only dead-letters one message (the database refused it as an event)."""
    plan = BatchPlan()
    plan.dead.add(item, reason)
    return plan


def event_row(env: Envelope, channel: Channel, item: Incoming) -> EventRow:
    return {
        "event_id": env.event_id,
        "device_id": env.device_id,
        "kind": env.kind,
        "channel": channel.value,
        "type": env.type,
        "seq": env.seq,
        "boot": env.boot,
        "ts": env.ts,
        "received_at": item.received_at,
        "correlation_id": env.correlation_id,
        "injected": env.injected,
        "run_id": env.run_id,
        "data": env.data,
    }


def replay_candidates(events: list[EventRow]) -> dict[str, set[int]]:
    """Sequence numbers to look up, by device: only events with a boot id, not injected, can be
    replays."""
    wanted: dict[str, set[int]] = {}
    for e in events:
        if e["boot"] and not e["injected"]:
            wanted.setdefault(e["device_id"], set()).add(e["seq"])
    return wanted


def find_replays(
    events: list[EventRow], stored: Iterable[tuple[str, str, int, str]]
) -> list[EventRow]:
    """Events whose (device, boot, seq) was already used by another event id, in the table
    (`stored`: device_id, boot, seq, event_id) or earlier in the batch: a replay, not a
    redelivery (a redelivery keeps its event id and is just a duplicate)."""
    keyed = [e for e in events if e["boot"] and not e["injected"]]
    if not keyed:
        return []
    wanted = replay_candidates(keyed)
    seen: dict[tuple[str, str, int], str] = {}
    for device_id, boot, seq, event_id in stored:
        if seq in wanted.get(device_id, ()):
            seen[(device_id, boot, seq)] = event_id
    replays = []
    for e in keyed:
        if seen.setdefault((e["device_id"], e["boot"], e["seq"]), e["event_id"]) != e["event_id"]:
            replays.append(e)
    return replays


def unique_events(events: list[EventRow]) -> list[EventRow]:
    """One row per event id (a redelivery in the same batch is inserted once)."""
    return list({row["event_id"]: row for row in reversed(events)}.values())[::-1]


def hourly_counts(rows: list[EventRow]) -> dict[StatKey, int]:
    """Hourly headline counts of newly stored events, by the kinds' declared stats."""
    counts: dict[StatKey, int] = {}
    for row in rows:
        if row["channel"] != Channel.EVENTS.value:
            continue
        spec = load_builtin_kinds().get(row["kind"])
        for stat in spec.stats if spec else ():
            if stat.counts(row["type"], row["data"]):
                hour = row["ts"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                key = (row["device_id"], stat.name, hour, row["kind"])
                counts[key] = counts.get(key, 0) + 1
    return counts


def observations(rows: list[EventRow]) -> list[Observed]:
    """Newly stored events as the alarm rules see them."""
    return [
        Observed(r["device_id"], r["kind"], r["channel"], r["type"], r["ts"], r["data"])
        for r in rows
    ]
