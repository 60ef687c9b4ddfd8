"""Unit tests of ingest's pure stages: classify (bytes and topic -> typed message or contract
error) and plan (rows and effects of a batch). No database, no broker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.ingest.classify import Incoming, Rules, classify
from backend.ingest.dead_letters import STORAGE_ERROR
from backend.ingest.plan import (
    find_replays,
    hourly_counts,
    observations,
    plan_batch,
    quarantine_plan,
    replay_candidates,
    unique_events,
)
from contracts.topics import Channel
from contracts.validation import ContractError

NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
GATE, CABINET = "gate-north", "cabinet-1"
RULES = Rules(kinds={GATE: "gate", CABINET: "medicine-cabinet"})
ENTRY = {"method": "card", "duration_ms": 1500}
CABINET_DATA = {
    "stock": [10, 10],
    "temperature_c": 5.0,
    "humidity_pct": 40.0,
    "band_min_c": 2.0,
    "band_max_c": 8.0,
    "door": "closed",
    "cooler": "ok",
}


def message(
    seq: int,
    event_id: str | None = None,
    *,
    device: str = GATE,
    kind: str = "gate",
    channel: str = "events",
    type_: str = "entry-granted",
    data: dict[str, Any] | None = None,
    ts: datetime = NOW,
    received_at: datetime = NOW,
    retained: bool = False,
    **extra: Any,
) -> Incoming:
    body = {
        "event_id": event_id or f"{device}-{seq}",
        "device_id": device,
        "kind": kind,
        "type": type_,
        "seq": seq,
        "boot": "boot-1",
        "ts": ts.isoformat(),
        "data": ENTRY if data is None else data,
        **extra,
    }
    topic = f"lijia/{kind}/{device}/{channel}"
    return Incoming(topic, json.dumps(body).encode(), received_at, retained=retained)


def state(status: str, reason: str, device: str = GATE, retained: bool = True) -> Incoming:
    payload = json.dumps({"status": status, "reason": reason}).encode()
    return Incoming(f"lijia/gate/{device}/state", payload, NOW, retained=retained)


def refusal(item: Incoming, rules: Rules = RULES) -> str:
    with pytest.raises(ContractError) as caught:
        classify(item, rules)
    return caught.value.reason.split(":", 1)[0]


# -- classify --------------------------------------------------------------------------------


def test_a_valid_event_becomes_a_typed_message() -> None:
    msg = classify(message(7), RULES)
    assert msg.topic.device_id == GATE
    assert msg.topic.channel is Channel.EVENTS
    assert msg.envelope is not None and msg.envelope.seq == 7
    assert msg.availability is None


def test_classify_refuses_what_the_street_does_not_know() -> None:
    assert refusal(message(1, device="gate-nowhere")) == "unknown-device"
    # Provisioned, but as a gate, while the topic and payload say medicine cabinet.
    wrong_kind = message(1, kind="medicine-cabinet", channel="telemetry", type_="telemetry",
                         data=CABINET_DATA)  # fmt: skip
    assert refusal(wrong_kind) == "kind-mismatch"
    assert refusal(Incoming(f"lijia/gate/{GATE}/events", b"{", NOW)) == "malformed-json"


def test_only_state_may_be_retained_unless_the_broker_cannot_say() -> None:
    assert refusal(message(1, retained=True)) == "retained"
    lenient = Rules(kinds=RULES.kinds, reject_retained=False)
    assert classify(message(1, retained=True), lenient).envelope is not None
    msg = classify(state("online", "connected", retained=True), RULES)
    assert msg.availability is not None and msg.availability.status == "online"


def test_clock_skew_is_refused_only_beyond_the_limit_and_only_when_asked() -> None:
    strict = Rules(kinds=RULES.kinds, max_clock_skew_s=60)
    ahead = message(1, ts=NOW + timedelta(minutes=5))
    assert refusal(ahead, strict) == "clock-skew"
    assert classify(message(1, ts=NOW + timedelta(seconds=30)), strict).envelope is not None
    assert classify(ahead, RULES).envelope is not None


# -- plan ------------------------------------------------------------------------------------


def test_refused_messages_become_dead_letters_without_their_payload() -> None:
    bad = Incoming("lijia/gate/gate-nowhere/events", message(1).payload, NOW)
    junk = Incoming(f"lijia/gate/{GATE}/events", b"not json", NOW)
    plan = plan_batch([message(1), bad, junk, Incoming("x" * 300, b"", NOW)], RULES)
    assert [row["event_id"] for row in plan.events] == [f"{GATE}-1"]
    assert plan.dead.reasons == {"device-mismatch": 1, "malformed-json": 1, "bad-topic": 1}
    first = plan.dead.rows[0]
    assert set(first) == {"topic", "reason", "received_at", "size", "sha256"}
    assert first["size"] == len(bad.payload)
    assert first["sha256"] == hashlib.sha256(bad.payload).hexdigest()
    assert len(plan.dead.rows[2]["topic"]) == 200


def test_quarantine_plans_only_a_dead_letter() -> None:
    plan = quarantine_plan(message(1), STORAGE_ERROR)
    assert plan.events == [] and plan.twins == {} and plan.command_results == []
    assert plan.dead.reasons == {"storage-error": 1}
    assert plan.dead.rows[0]["reason"] == STORAGE_ERROR


def test_event_rows_keep_the_envelope_and_when_it_arrived() -> None:
    later = NOW + timedelta(seconds=2)
    plan = plan_batch([message(3, correlation_id="journey-1", received_at=later)], RULES)
    (row,) = plan.events
    assert row["channel"] == "events" and row["type"] == "entry-granted"
    assert (row["seq"], row["boot"], row["ts"], row["received_at"]) == (3, "boot-1", NOW, later)
    assert row["correlation_id"] == "journey-1" and row["injected"] is False
    assert row["data"] == ENTRY
    assert plan.origin[row["event_id"]].received_at == later


def test_the_twin_takes_the_highest_seq_and_the_freshest_clock() -> None:
    rules = Rules(kinds=RULES.kinds, clock_skew_flag_s=10)
    batch = [
        message(5, ts=NOW - timedelta(seconds=30)),  # waited in a queue: looks skewed
        message(4, ts=NOW + timedelta(seconds=2), received_at=NOW),
    ]
    twin = plan_batch(batch, rules).twins[GATE]
    assert twin["last_seq"] == 5 and twin["last_seen"] == NOW
    assert twin["clock_skew_s"] == 2.0 and twin["clock_skewed"] is False
    assert "clock_skew_s" not in plan_batch(batch, RULES).twins[GATE]
    skewed = plan_batch([message(6, ts=NOW + timedelta(seconds=30))], rules).twins[GATE]
    assert skewed["clock_skew_s"] == 30.0 and skewed["clock_skewed"] is True


def test_injected_events_are_stored_but_leave_the_twin_alone() -> None:
    injected = message(0, "drill-1", injected=True, boot=None)
    plan = plan_batch([injected], RULES)
    assert len(plan.events) == 1 and plan.events[0]["injected"] is True
    assert plan.twins == {GATE: {}}


def test_availability_telemetry_and_command_results_shape_the_twin_and_the_effects() -> None:
    telemetry = message(1, device=CABINET, kind="medicine-cabinet", channel="telemetry",
                        type_="telemetry", data=CABINET_DATA)  # fmt: skip
    result = message(2, channel="command-results", type_="command-result",
                     data={"command_id": "cmd-1", "status": "done"})  # fmt: skip
    plan = plan_batch([telemetry, result, state("offline", "last-will")], RULES)
    assert plan.twins[CABINET]["telemetry"] == CABINET_DATA
    gate = plan.twins[GATE]
    assert (gate["availability"], gate["availability_reason"]) == ("offline", "last-will")
    assert gate["availability_changed_at"] == NOW
    assert len(plan.events) == 2  # state is not an event
    ((env, res, at),) = plan.command_results
    assert env.device_id == GATE and (res.command_id, res.status) == ("cmd-1", "done")
    assert at == NOW  # the street's time it reached us (no simulator: wall time)


def test_replays_are_another_event_id_on_a_used_boot_and_seq() -> None:
    plan = plan_batch(
        [
            message(1, "a"),  # redelivery of a stored event: not a replay
            message(2, "b"),  # stored under another id: a replay
            message(3, "c"),
            message(3, "d"),  # same boot and seq as "c" earlier in the batch: a replay
            message(0, "e", injected=True, boot=None),  # injected: never a replay
        ],
        RULES,
    )
    assert replay_candidates(plan.events) == {GATE: {1, 2, 3}}
    stored = [(GATE, "boot-1", 1, "a"), (GATE, "boot-1", 2, "x"), (GATE, "boot-1", 9, "z")]
    replays = find_replays(plan.events, stored)
    assert [row["event_id"] for row in replays] == ["b", "d"]
    assert find_replays(plan.events, []) == [plan.events[3]]
    # Another boot is a restarted device counting from the start again, not a replay.
    assert find_replays(plan.events, [(GATE, "boot-0", 2, "x")]) == [plan.events[3]]


def test_a_redelivery_within_a_batch_is_inserted_once() -> None:
    plan = plan_batch([message(1, "a"), message(2, "b"), message(1, "a")], RULES)
    assert len(plan.events) == 3
    assert [row["event_id"] for row in unique_events(plan.events)] == ["b", "a"]


def test_hourly_counts_follow_the_kinds_declared_stats() -> None:
    slow = message(2, data={"method": "card", "duration_ms": 4000}, ts=NOW + timedelta(hours=1))
    denied = message(3, type_="entry-denied", data={"method": "card", "reason": "expired-pass"})
    plan = plan_batch([message(1), slow, denied], RULES)
    assert len(plan.events) == 3, plan.dead.rows
    hour = NOW.replace(minute=0)
    assert hourly_counts(plan.events) == {
        (GATE, "entries", hour, "gate"): 1,
        (GATE, "entries-within-3s", hour, "gate"): 1,
        (GATE, "entries", hour + timedelta(hours=1), "gate"): 1,
        (GATE, "denied", hour, "gate"): 1,
    }


def test_observations_are_the_stored_rows_as_rules_see_them() -> None:
    plan = plan_batch([message(1)], RULES)
    (seen,) = observations(plan.events)
    assert (seen.device_id, seen.kind, seen.channel, seen.type) == (
        GATE,
        "gate",
        "events",
        "entry-granted",
    )
    assert seen.ts == NOW and seen.data == ENTRY
