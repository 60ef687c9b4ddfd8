"""No one let in: what a device's credentials can and cannot do on the shipped broker config."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.credentials import Credentials
from backend.config import Settings
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until
from tests.helpers import DeviceClient

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lijia.db'}"  # the broker's rules do not depend on it


class Listener:
    """A device session that records what it receives, in order. Its client id is the device
    id, the only one the broker accepts the device's credentials with."""

    def __init__(self, port: int, device: str, password: str, client_id: str = "") -> None:
        self.got: list[str] = []
        self.granted: list[int] = []
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or device, protocol=mqtt.MQTTv5
        )
        self.c.username_pw_set(device, password)
        self.c.on_message = lambda _c, _u, m: self.got.append(m.topic)
        self.c.on_subscribe = lambda _c, _u, _m, codes, _p: self.granted.extend(
            int(code.value) for code in codes
        )
        self.ready = threading.Event()
        self.c.on_connect = lambda *_a: self.ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_device_cannot_read_others_wildcards_or_sys(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    south = DeviceClient(broker.port, "gate-south", creds.devices["gate-south"])
    online = json.dumps({"status": "online", "reason": "connected"}).encode()
    south.publish_raw("lijia/gate/gate-south/state", online, retain=True)  # a retained bait
    spy = Listener(broker.port, "gate-north", creds.devices["gate-north"])
    for topic in (
        "lijia/gate/gate-south/events",
        "lijia/gate/gate-south/commands",
        "lijia/#",
        "#",
        "$SYS/#",
    ):
        spy.c.subscribe(topic, qos=1)
    spy.c.subscribe("lijia/gate/gate-north/commands", qos=1)  # its own: allowed
    # Mosquitto 2.0 grants every subscription and applies the ACL to each delivery instead.
    wait_until(lambda: len(spy.granted) == 6)
    south.send(south.envelope())
    south.close()
    # The marker: a command to gate-north arrives; anything it could read would have come first.
    assert backend.post("/devices/gate-north/commands", {"name": "open-once"}).status_code == 202
    wait_until(lambda: "lijia/gate/gate-north/commands" in spy.got)
    spy.close()
    # (one copy per overlapping subscription that covers its own commands topic)
    assert set(spy.got) == {"lijia/gate/gate-north/commands"}


def test_device_cannot_publish_commands(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    target = Listener(broker.port, "gate-north", creds.devices["gate-north"])
    target.c.subscribe("lijia/gate/gate-north/commands", qos=1)
    wait_until(lambda: target.granted)
    # Another device, and the device itself (its one session: a second one with its client id
    # would take this one over).
    dev = DeviceClient(broker.port, "gate-south", creds.devices["gate-south"])
    for device, client in (("gate-south", dev.client), ("gate-north", target.c)):
        fake = json.dumps({"command_id": f"fake-{device}", "name": "open-once"}).encode()
        info = client.publish("lijia/gate/gate-north/commands", fake, qos=1)
        info.wait_for_publish(10)
    dev.close()
    assert backend.post("/devices/gate-north/commands", {"name": "release"}).status_code == 202
    wait_until(lambda: target.got)
    target.close()
    assert target.got == ["lijia/gate/gate-north/commands"]  # only the backend's


def test_device_credentials_cannot_take_over_the_backend_session(
    broker: BrokerProcess, backend: BackendProcess, creds: Credentials
) -> None:
    dev = DeviceClient(broker.port, "gate-east", creds.devices["gate-east"])
    before = dev.send(dev.envelope()).event_id
    wait_until(lambda: before in backend.event_ids())
    # The ids an attacker could guess: the old fixed names, and the real one, which is public
    # now: the broker accepts a device's credentials with its own device id only.
    real = Settings(mqtt_password=creds.backend_password).ingest_id()
    assert real == "backend:ingest"
    for guess in ("lijia-backend-ingest", "lijia-ingest", "backend", real):
        intruder = Listener(broker.port, "gate-east", creds.devices["gate-east"], client_id=guess)
        intruder.close()
    assert backend.health()["broker_connected"]
    after = dev.send(dev.envelope()).event_id
    dev.close()
    wait_until(lambda: after in backend.event_ids())
