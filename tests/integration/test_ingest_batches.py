"""Batch-level ingest paths: the replay check's query shapes, rule state and repeated occurrences
written once per batch, and the surrogate check's shortcut. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.fleet import load_fleet
from backend.alarms import AlarmEngine
from backend.db import init_db, make_engine, provision
from backend.ingest import BatchResult, Incoming, Registry, write_batch
from backend.models import Alarm, RuleState, table
from contracts.validation import ContractError, parse_message

GATES = ["gate-north", "gate-south", "gate-east", "gate-lijia-west", "gate-tianyue-south"]
SPARSE_GATE = "gate-longtang"
ENTRY = {"method": "card", "duration_ms": 1500}
NOW = datetime.now(UTC)


def envelope(device_id: str, seq: int, event_id: str, kind: str = "gate", **kw: Any) -> Incoming:
    channel = kw.pop("channel", "events")
    body = {
        "version": 1,
        "event_id": event_id,
        "device_id": device_id,
        "kind": kind,
        "type": kw.pop("type_", "entry-granted"),
        "seq": seq,
        "boot": "boot-1",
        "ts": kw.pop("ts", NOW).isoformat(),
        "data": kw.pop("data", ENTRY),
    }
    topic = f"lijia/{kind}/{device_id}/{channel}"
    return Incoming(topic, json.dumps(body).encode(), NOW, mid=seq, qos=1)


@pytest.fixture
def registry(database_url: str) -> Registry:
    engine = make_engine(database_url)
    init_db(engine)
    provision(engine, load_fleet())
    return Registry(engine)


def test_replays_are_found_by_every_shape_of_the_lookup(registry: Registry) -> None:
    engine = registry.engine
    # A few devices with long runs of numbers (a drained backlog: a range read per device) and
    # one device with scattered numbers (the join on a list of pairs).
    first = [
        envelope(gate, i * 1000 + n, f"{gate}-{n}")
        for i, gate in enumerate(GATES)
        for n in range(300)
    ]
    first += [envelope(SPARSE_GATE, 100_000 + k * 1000, f"{SPARSE_GATE}-{k}") for k in range(20)]
    assert write_batch(engine, registry, first).stored == len(first)

    replays = [
        envelope(GATES[2], 2 * 1000 + 150, "replay-dense"),
        envelope(SPARSE_GATE, 100_000 + 7 * 1000, "replay-sparse"),
    ]
    again: BatchResult = write_batch(engine, registry, first + replays)
    assert (again.stored, again.duplicates, again.dead_lettered) == (0, len(first), 2)
    assert again.reasons == {"replayed-seq": 2}

    # Many devices with a number or two each (a live street): one join for all of them.
    live = [envelope(gate, i * 1000 + 5, f"replay-live-{gate}") for i, gate in enumerate(GATES)]
    live.append(envelope(SPARSE_GATE, 100_000, "replay-live-sparse"))
    fresh = [envelope(gate, 999_999, f"fresh-{gate}") for gate in GATES]
    result = write_batch(engine, registry, live + fresh)
    assert (result.stored, result.dead_lettered) == (len(fresh), len(live))
    engine.dispose()


CABINET = next(d.id for d in load_fleet().devices if d.kind == "medicine-cabinet")
HOUR_AGO = NOW - timedelta(hours=1)


def cabinet(seq: int, minute: int, temperature: float) -> Incoming:
    data = {
        "stock": [10, 10],
        "temperature_c": temperature,
        "humidity_pct": 40.0,
        "band_min_c": 2.0,
        "band_max_c": 8.0,
        "door": "closed",
        "cooler": "ok",
    }
    ts = HOUR_AGO + timedelta(minutes=minute)
    return envelope(CABINET, seq, f"cab-{seq}", kind="medicine-cabinet", channel="telemetry",
                    type_="telemetry", ts=ts, data=data)  # fmt: skip


def test_a_condition_held_within_one_batch_raises_once_and_counts_occurrences(
    registry: Registry,
) -> None:
    engine, alarms = registry.engine, AlarmEngine()
    # Too warm at minutes 0, 3, 6 and 9 of one batch; the rule wants 5 minutes (for_s=300):
    # raised at minute 6, counted again at minute 9.
    warm = [cabinet(n, minute=n * 3, temperature=11.0) for n in range(4)]
    raised = write_batch(engine, registry, warm, alarms)
    assert [(c.rule, c.status) for c in raised.alarm_changes] == [("cold-chain-high", "active")]
    with engine.connect() as conn:
        [alarm] = conn.execute(table(Alarm).select()).mappings().all()
        state = conn.execute(table(RuleState).select()).mappings().all()
    assert (alarm["occurrences"], alarm["status"]) == (2, "active")
    assert alarm["last_at"] == HOUR_AGO + timedelta(minutes=9)
    assert [(s["rule"], s["since"]) for s in state] == [("cold-chain-high", HOUR_AGO)]

    cleared = write_batch(engine, registry, [cabinet(4, minute=12, temperature=5.0)], alarms)
    assert [(c.rule, c.status) for c in cleared.alarm_changes] == [("cold-chain-high", "cleared")]
    with engine.connect() as conn:
        assert conn.execute(table(RuleState).select()).all() == []
    engine.dispose()


def test_lone_surrogate_escapes_are_still_refused_and_other_escapes_pass() -> None:
    def body(device_id: str) -> bytes:
        return (
            f'{{"version":1,"event_id":"e1","device_id":"{device_id}","kind":"gate",'
            '"type":"entry-granted","seq":1,"ts":"2026-01-01T00:00:00Z",'
            '"data":{"method":"card","duration_ms":1500}}'
        ).encode()

    with pytest.raises(ContractError, match="invalid-unicode"):
        parse_message("lijia/gate/gate-north/events", body("gate-north\\udb2f"))
    msg = parse_message("lijia/gate/gate-north/events", body("\\u0067ate-north"))
    assert msg.envelope is not None and msg.envelope.device_id == "gate-north"
