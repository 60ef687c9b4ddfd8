"""Property-based: whatever arrives on the wire, the ingest path never raises and never stores
a row that breaks the contract (hypothesis generates the payloads)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters.fleet import load_fleet
from backend.db import init_db, make_engine, provision
from backend.ingest import Incoming, Registry, write_batch
from backend.models import Event, table
from contracts.validation import parse_message

DEVICES = ["gate-north", "gate-south", "gate-nowhere"]
CHANNELS = ["events", "telemetry", "state", "command-results", "commands", "junk"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    """Mostly well-formed envelopes with a twist: wrong types, extra or missing fields."""
    body: dict[str, object] = {
        "version": draw(st.sampled_from([1, 2, "1"])),
        "event_id": draw(st.text(min_size=0, max_size=70)),
        "device_id": draw(st.sampled_from(DEVICES)),
        "kind": draw(st.sampled_from(["gate", "stereo", "Gate"])),
        "type": draw(st.sampled_from(["entry-granted", "tailgating", "telemetry", "nope"])),
        "seq": draw(st.integers(min_value=-2, max_value=10**6)),
        "ts": draw(st.sampled_from([datetime.now(UTC).isoformat(), "yesterday", 0])),
        "data": draw(
            st.dictionaries(
                st.sampled_from(
                    ["method", "duration_ms", "extra_people", "resident", "name", "score"]
                ),
                json_values,
                max_size=4,
            )
        ),
    }
    for key in draw(st.lists(st.sampled_from(list(body)), max_size=2)):
        body.pop(key, None)
    return json.dumps(body).encode()


payloads = envelopes() | st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
topics = st.builds(
    lambda d, c: f"lijia/gate/{d}/{c}", st.sampled_from(DEVICES), st.sampled_from(CHANNELS)
) | st.text(max_size=30)


VALID_TOPIC = "lijia/gate/gate-north/events"
VALID = json.dumps(
    {
        "version": 1,
        "event_id": "prop-valid-1",
        "device_id": "gate-north",
        "kind": "gate",
        "type": "tailgating",
        "seq": 1,
        "ts": "2026-11-22T08:00:00+00:00",
        "data": {"extra_people": 1},
    }
).encode()


def _engine(tmp: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp / 'prop.db'}")
    init_db(engine)
    provision(engine, load_fleet())
    return engine


@settings(max_examples=300, deadline=None)
@example(batch=[(VALID_TOPIC, VALID, False), (VALID_TOPIC, VALID, False)])  # stored once
@given(batch=st.lists(st.tuples(topics, payloads, st.booleans()), min_size=1, max_size=8))
def test_ingest_never_raises_and_stores_only_valid_rows(
    batch: list[tuple[str, bytes, bool]],
) -> None:
    engine = ENGINE
    items = [Incoming(t, p, datetime.now(UTC), retained=r) for t, p, r in batch]
    result = write_batch(engine, Registry(engine), items)
    assert result.stored + result.duplicates + result.dead_lettered <= len(items)
    with engine.connect() as conn:
        rows = conn.execute(select(table(Event))).mappings().all()
    for row in rows:
        payload = json.dumps(
            {
                "version": 1,
                "event_id": row["event_id"],
                "device_id": row["device_id"],
                "kind": row["kind"],
                "type": row["type"],
                "seq": row["seq"],
                "ts": row["ts"].isoformat(),
                "correlation_id": row["correlation_id"],
                "injected": row["injected"],
                "run_id": row["run_id"],
                "data": row["data"],
            }
        ).encode()
        parse_message(f"lijia/{row['kind']}/{row['device_id']}/{row['channel']}", payload)


ENGINE: Engine


def setup_module() -> None:
    import tempfile

    global ENGINE
    ENGINE = _engine(Path(tempfile.mkdtemp(prefix="lijia-prop-")))
