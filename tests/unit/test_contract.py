"""The wire contract: topics, envelope, gate payloads, privacy refusals, docs/protocol.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.catalogue import get_kind, load_builtin_kinds
from contracts.docs import EXAMPLE_EVENT, render
from contracts.kinds import gate
from contracts.topics import Channel, Topic, TopicError
from contracts.validation import ContractError, parse_message

ROOT = Path(__file__).resolve().parents[2]


def test_topic_round_trip() -> None:
    topic = Topic("gate", "gate-north", Channel.COMMAND_RESULTS)
    assert str(topic) == "lijia/gate/gate-north/command-results"
    assert Topic.parse(str(topic)) == topic


@pytest.mark.parametrize(
    "bad",
    [
        "lijia/gate/gate-north",
        "lijia/gate/+/events",
        "lijia/gate/#/events",
        "other/gate/g/events",
        "lijia/Gate/g/events",
        "lijia/gate/g/diary",
        "lijia/gate/g-/events",
        "lijia/gate/g/events/x",
    ],
)
def test_bad_topics_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(bad)


def test_protocol_doc_matches_the_code() -> None:
    assert (ROOT / "docs" / "protocol.md").read_text() == render(), (
        "docs/protocol.md is stale: run `python -m contracts.docs > docs/protocol.md`"
    )


def test_documented_example_is_valid() -> None:
    msg = parse_message("lijia/gate/gate-north/events", json.dumps(EXAMPLE_EVENT).encode())
    assert msg.envelope is not None and msg.envelope.type == "entry-granted"


@pytest.mark.parametrize("field", ["name", "image", "face_template", "photo"])
def test_gate_events_refuse_personal_fields(field: str) -> None:
    with pytest.raises(ValidationError):
        gate.EntryGranted.model_validate({"method": "face", field: "x"})


def test_resident_must_be_a_pseudonym() -> None:
    with pytest.raises(ValidationError):
        gate.EntryGranted(method="face", resident="Zhang San")
    assert gate.EntryGranted(method="face", resident="r-0123456789abcdef").resident


def test_every_kind_has_json_schemas() -> None:
    kinds = load_builtin_kinds()
    assert "gate" in kinds
    for spec in kinds.values():
        schemas = spec.json_schemas()
        assert schemas["events"] and schemas["commands"]
        assert schemas["telemetry"]["type"] == "object"


def test_gate_contract_covers_the_issue() -> None:
    spec = get_kind("gate")
    assert set(spec.events) >= {"entry-granted", "entry-denied", "tailgating", "door-held-open"}
    assert set(spec.commands) == {"open-once", "lock-down", "release"}
    methods = gate.EntryGranted.model_json_schema()["properties"]["method"]["enum"]
    assert {"face", "card", "qr", "pin"} <= set(methods)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("lijia/gate/gate-north/events", b"{", "malformed-json"),
        ("lijia/gate/gate-north/events", b"\xff", "not-utf8"),
        ("lijia/gate/gate-north/events", b"x" * 20000, "too-large"),
        ("lijia/nope/gate-north/events", b"{}", "unknown-kind"),
        ("lijia/gate/gate-north/events", b"{}", "invalid-envelope"),
        ("lijia/gate/gate-north/commands", b"{}", "bad-channel"),
        ("lijia/gate/gate-north/state", b'{"status":"asleep"}', "invalid-availability"),
    ],
)
def test_contract_errors_have_reasons(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_message(topic, payload)
    assert err.value.reason.startswith(reason)


def test_event_id_is_required_on_the_wire() -> None:
    """Without an id made by the device, a redelivered event could not be recognised."""
    raw = {k: v for k, v in EXAMPLE_EVENT.items() if k != "event_id"}
    with pytest.raises(ContractError, match="invalid-envelope: event_id"):
        parse_message("lijia/gate/gate-north/events", json.dumps(raw).encode())
