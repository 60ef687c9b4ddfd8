"""The device outbox (devices/outbox.py): what a device publishes again after a reconnect, so a
broker killed between its acknowledgement and its next save loses nothing. Unit level; the
end-to-end proof is tests/integration/test_faults.py::test_broker_sigkilled_mid_stream."""

from __future__ import annotations

from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.client import PayloadType
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from adapters.fleet import load_fleet
from contracts.envelope import Envelope
from contracts.kinds.gate import EntryGranted
from contracts.topics import Channel
from devices.behaviour import Emission
from devices.clock import SimClock
from devices.kinds.gate import GateBehaviour
from devices.loop import MqttLoop
from devices.outbox import RESEND_CHANNELS, Outbox
from devices.population import Population
from devices.runner import device_rng
from devices.session import BrokerAddress, DeviceSession
from devices.stats import FleetStats

OK = ReasonCode(PacketTypes.PUBACK, "Success")
REFUSED = ReasonCode(PacketTypes.PUBACK, "Not authorized")
CONNECTED = ReasonCode(PacketTypes.CONNACK, "Success")
FRESH = mqtt.ConnectFlags(session_present=False)
LOST = mqtt.DisconnectFlags(is_disconnect_packet_from_server=False)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def payload(i: int, size: int = 10) -> bytes:
    return f"{i:0{size}d}".encode()


def test_the_window_is_counted_back_from_the_newest_acknowledgement() -> None:
    clock = FakeClock()
    box = Outbox(window_s=5.0, clock=clock)
    for i in range(4):
        box.sent(i, Channel.EVENTS, payload(i))
        box.acked(i)
        clock.t += 2.0  # acked at 1000, 1002, 1004, 1006
    # Time alone ages nothing: a device that notices the disconnect late (keepalive) still
    # has what was acknowledged just before the broker died.
    clock.t += 3600
    assert [p for _, p in box.take()] == [payload(1), payload(2), payload(3)]
    assert len(box) == 0 and box.size_bytes == 0 and box.resent == 3
    assert box.take() == []  # taken once: each copy comes back only through its own ack


def test_count_and_byte_bounds_keep_the_newest() -> None:
    box = Outbox(window_s=60.0, max_count=3, max_bytes=10_000, clock=FakeClock())
    for i in range(10):
        box.sent(i, Channel.TELEMETRY, payload(i))
        box.acked(i)
    assert len(box) == 3 and box.size_bytes == 30
    assert [p for _, p in box.take()] == [payload(7), payload(8), payload(9)]

    box = Outbox(window_s=60.0, max_count=100, max_bytes=250, clock=FakeClock())
    for i in range(10):
        box.sent(i, Channel.EVENTS, payload(i, size=100))
        box.acked(i)
    assert len(box) == 2 and box.size_bytes == 200
    assert [p for _, p in box.take()] == [payload(8, 100), payload(9, 100)]


def test_only_acknowledged_envelope_channels_are_kept() -> None:
    box = Outbox(clock=FakeClock())
    assert {Channel.EVENTS, Channel.TELEMETRY, Channel.COMMAND_RESULTS} == RESEND_CHANNELS
    box.sent(1, Channel.STATE, b"online")  # retained, newest wins: never resent
    box.sent(2, Channel.EVENTS, b"unacked")  # paho resends it itself, with its own mid
    box.sent(3, Channel.COMMAND_RESULTS, b"refused")
    box.sent(4, Channel.EVENTS, b"acked")
    box.acked(1)
    box.acked(3, accepted=False)  # a failure reason code: the broker did not take it
    box.acked(4)
    box.acked(99)  # an unknown mid (e.g. a QoS 0 publish) is ignored
    assert box.take() == [(Channel.EVENTS, b"acked")]
    box.acked(2)  # acknowledged after the reconnect: now it is in the window
    assert box.take() == [(Channel.EVENTS, b"unacked")]


def test_unacknowledged_publishes_are_bounded_too() -> None:
    box = Outbox(max_pending=3, clock=FakeClock())
    for i in range(5):
        box.sent(i, Channel.EVENTS, payload(i))
    for i in range(5):
        box.acked(i)  # 0 and 1 were forgotten (paho dropped them, say): no ack brings them back
    assert [p for _, p in box.take()] == [payload(2), payload(3), payload(4)]


class Wire:
    """Stands in for paho's publish: records what the session hands over, gives mids."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(
        self,
        topic: str,
        payload: PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        assert isinstance(payload, bytes)
        self.sent.append((topic, payload))
        info = mqtt.MQTTMessageInfo(len(self.sent))
        info.rc = mqtt.MQTT_ERR_SUCCESS
        return info


def test_device_session_publishes_its_acknowledged_window_again_after_a_reconnect() -> None:
    spec = next(d for d in load_fleet().devices if d.kind == "gate")
    behaviour = GateBehaviour(spec, device_rng(1, spec.id), Population(10, 1))
    stats = FleetStats()
    session = DeviceSession(
        behaviour, "secret", MqttLoop(), SimClock(datetime.now(UTC)), BrokerAddress(), stats
    )
    wire = Wire()
    session.client.publish = wire.publish  # type: ignore[method-assign]
    session.client.subscribe = lambda *a, **k: (mqtt.MQTT_ERR_SUCCESS, 1)  # type: ignore[method-assign]
    client = session.client

    session._on_connect(client, None, FRESH, CONNECTED, None)
    granted = Emission(Channel.EVENTS, "entry-granted", EntryGranted(method="card"))
    envs = [session.emit(granted, datetime.now(UTC)) for _ in range(3)]
    assert len(wire.sent) == 4  # online state + 3 events, mids 1..4
    for mid in (1, 2, 3):  # the state and the first two events are acknowledged
        session._on_publish(client, None, mid, OK, None)
    assert session.pending == 1 and stats.backlog == 1

    # The broker dies (socket closed); the device reconnects.
    session._on_disconnect(client, None, LOST, OK, None)
    assert stats.connected == 0
    before = len(wire.sent)
    session._on_connect(client, None, FRESH, CONNECTED, None)
    again = wire.sent[before:]
    assert again[0][0].endswith("/state")  # "online" first, then the window, same bytes
    resent = [Envelope.model_validate_json(data) for _, data in again[1:]]
    assert [e.event_id for e in resent] == [e.event_id for e in envs[:2]]
    assert wire.sent[before + 1 :] == wire.sent[1:3]
    # Copies are not counted as new events; they are in flight like any publish.
    assert stats.events == 3 and stats.published == 5
    assert session.pending == 1 + 1 + 2 and stats.backlog == session.pending
    assert session.outbox.resent == 2 and stats.resent == 2  # the fleet's status line

    # A second reconnect before the copies are acknowledged sends nothing again (paho does).
    session._on_disconnect(client, None, LOST, OK, None)
    before = len(wire.sent)
    session._on_connect(client, None, FRESH, CONNECTED, None)
    assert len(wire.sent) == before + 1  # only "online"
