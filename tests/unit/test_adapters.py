"""The shared adapters: fleet look-ups and the reconnect back-off (no broker needed)."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from adapters.fleet import device_kinds, load_fleet
from adapters.mqtt import Backoff, connect_options, make_client, on_connack, on_disconnected


def test_device_kinds_names_every_device_of_the_scaled_street() -> None:
    street = load_fleet(size=40)
    kinds = device_kinds(size=40)
    assert list(kinds) == [d.id for d in street.devices]
    assert all(kinds[d.id] == d.kind for d in street.devices)


def test_backoff_doubles_up_to_its_cap_and_starts_over_once_connected() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_make_client_speaks_the_asked_protocol_as_the_asked_user() -> None:
    client = make_client("c-1", "gate-01", "secret", protocol="3.1.1", persistent=True)
    assert client.protocol == mqtt.MQTTv311
    assert client.username == "gate-01"
    assert client._client_id == b"c-1"
    assert client._clean_session is False
    assert make_client("c-2", "u", "p").protocol == mqtt.MQTTv5


def test_connect_options_keep_a_persistent_mqtt5_session() -> None:
    kept = connect_options("5", persistent=True, session_expiry_s=3600)
    assert kept["clean_start"] is False
    assert kept["properties"].json()["SessionExpiryInterval"] == 3600
    assert connect_options("5", persistent=False, session_expiry_s=3600) == {"clean_start": True}
    assert connect_options("3.1.1", persistent=True, session_expiry_s=3600) == {}


def test_reason_only_callbacks_get_paho_s_reason_code() -> None:
    client = make_client("c-2", "gate-01", "secret")
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    lost = ReasonCode(PacketTypes.DISCONNECT, "Keep alive timeout")
    answers: list[ReasonCode] = []
    on_connack(answers.append)(client, None, mqtt.ConnectFlags(False), refused, None)
    on_disconnected(answers.append)(client, None, mqtt.DisconnectFlags(False), lost, None)
    assert answers == [refused, lost]
    assert answers[0].is_failure
