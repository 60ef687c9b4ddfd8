"""Unit tests of ingest's retained-copy refusal and clears, the strict `state` check, and the
broker-drop baseline (backend/ingest/drops.py). No broker, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backend.ingest.classify import Incoming, Rules, classify
from backend.ingest.drops import DropWatch, Observation, new_drops, parse_uptime
from backend.ingest.plan import plan_batch
from contracts.validation import ContractError

NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
RULES = Rules(kinds={"gate-north": "gate"}, max_clock_skew_s=86_400)
STATE = "lijia/gate/gate-north/state"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def refusal(item: Incoming) -> str:
    with pytest.raises(ContractError) as caught:
        classify(item, RULES)
    return caught.value.reason.split(":", 1)[0]


@pytest.mark.parametrize("channel", ["events", "telemetry", "command-results"])
def test_retained_on_a_never_retained_channel_is_refused_whatever_it_holds(channel: str) -> None:
    item = Incoming(f"lijia/gate/gate-north/{channel}", b"\xff garbage", NOW, retained=True)
    assert refusal(item) == "retained"
    plan = plan_batch([item], RULES)
    assert plan.clear_retained == [item.topic]
    assert plan.dead.reasons == {"retained": 1}


def test_an_empty_retained_message_is_a_clear_ignored_not_a_dead_letter() -> None:
    clears = [
        Incoming("lijia/gate/gate-north/events", b"", NOW, retained=True),
        Incoming(STATE, b"", NOW, retained=True),
    ]
    plan = plan_batch(clears, RULES)
    assert plan.clears_ignored == 2
    assert not plan.dead.rows and not plan.twins and not plan.clear_retained


@pytest.mark.parametrize(
    "payload",
    [
        b'{"status": "offline", "reason": "clean-shutdown", "ts": 0}',
        b'{"status": "offline", "reason": "connected"}',
        b'{"status": "online", "reason": "last-will"}',
        b'{"status": "online", "reason": "connected", "status": "offline"}',
        b'{"status": "online", "reason": "connected", "ts": "1970-01-01T00:00:00Z"}',
    ],
)
def test_state_that_pydantic_would_coerce_is_refused(payload: bytes) -> None:
    item = Incoming(STATE, payload, NOW, retained=True)
    assert refusal(item) in {"invalid-availability", "clock-skew"}
    assert not plan_batch([item], RULES).twins


def test_the_contracts_availability_still_becomes_availability() -> None:
    for body in (
        {"status": "online", "reason": "connected", "ts": NOW.isoformat()},
        {"status": "offline", "reason": "last-will"},
        {"status": "offline", "reason": "clean-shutdown", "ts": NOW.isoformat()},
    ):
        msg = classify(Incoming(STATE, json.dumps(body).encode(), NOW, retained=True), RULES)
        assert msg.availability is not None and msg.availability.status == body["status"]


def test_a_retained_availability_days_old_is_availability_but_not_one_from_1999() -> None:
    """The retained state a long-online device left at its connect reaches every new
    subscription with that old time: availability, not clock skew."""
    week_ago = {"status": "online", "reason": "connected", "ts": at(-7 * 86_400).isoformat()}
    msg = classify(Incoming(STATE, json.dumps(week_ago).encode(), NOW, retained=True), RULES)
    assert msg.availability is not None and msg.availability.status == "online"
    live = Incoming(STATE, json.dumps(week_ago).encode(), NOW, retained=False)
    assert refusal(live) == "clock-skew"
    ancient = {"status": "online", "reason": "connected", "ts": "1999-12-31T23:00:00Z"}
    assert refusal(Incoming(STATE, json.dumps(ancient).encode(), NOW, retained=True)) == (
        "clock-skew"
    )
    ahead = {"status": "online", "reason": "connected", "ts": at(3 * 86_400).isoformat()}
    assert refusal(Incoming(STATE, json.dumps(ahead).encode(), NOW, retained=True)) == "clock-skew"


def test_uptime_is_read_from_mosquittos_text() -> None:
    assert parse_uptime(b"123 seconds") == 123


def test_new_drops_against_the_kept_observation() -> None:
    kept = Observation(dropped=40, uptime_s=1000, seen_at=at(0))
    # Same broker run (it started 1000 s before we saw it): only the increase is new.
    assert new_drops(kept, Observation(55, 1600, at(600))) == 15
    # The broker started after we last saw it: its counter began at 0, all of it is new...
    assert new_drops(kept, Observation(55, 100, at(600))) == 55
    # ...also when it has been up longer since than it had been before, or its count fell.
    assert new_drops(kept, Observation(55, 5000, at(10_000))) == 55
    assert new_drops(kept, Observation(10, 1600, at(600))) == 10
    # Nothing kept (a new database): loud rather than silent.
    assert new_drops(None, Observation(7, 50, at(0))) == 7


def test_drop_watch_judges_after_both_retained_values_then_follows_increases() -> None:
    watch = DropWatch(window_s=300)
    watch.load(Observation(dropped=40, uptime_s=1000, seen_at=at(0)))
    watch.connected()
    watch.on_dropped(190, at(60))  # retained, but no uptime yet: not judged
    assert watch.since_start == 0
    watch.on_uptime(1058, at(60))
    assert watch.since_start == 150 and watch.recent(at(61)) == 150
    assert watch.broker_total == 190
    watch.on_uptime(1063, at(65))  # a tick without new drops
    watch.on_dropped(200, at(70))
    assert watch.since_start == 160 and watch.recent(at(71)) == 160
    # The window forgets; the totals do not.
    assert watch.recent(at(70 + 301)) == 0 and watch.since_start == 160
    saved = watch.unsaved()
    assert saved is not None and saved.dropped == 200 and watch.unsaved() is None
    # A reconnect to the same run shows the same retained values again: nothing new.
    watch.connected()
    watch.on_uptime(1063, at(80))
    watch.on_dropped(200, at(80))
    assert watch.since_start == 160
