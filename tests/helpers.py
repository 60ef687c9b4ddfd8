"""A hand-driven MQTT device, a backend of a test's own and commands through the API, for tests
(the other process helpers live in stack.processes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt import Backoff, make_client
from contracts.envelope import Envelope, new_id
from contracts.topics import Channel, Topic
from contracts.validation import dumps
from stack.broker import BrokerProcess
from stack.processes import BackendProcess, wait_until


class DeviceClient:
    """A hand-driven device: publishes envelopes with its own credentials, waits for PUBACKs.
    Its client id is its device id, the only one the broker accepts these credentials with: a
    second DeviceClient of the same device takes the first one's session over."""

    def __init__(
        self,
        port: int,
        device_id: str,
        password: str,
        kind: str = "gate",
        protocol: int = 5,
        keepalive: int = 60,
    ) -> None:
        self.device_id, self.kind, self.seq = device_id, kind, 0
        self.client = make_client(
            device_id,
            device_id,
            password,
            protocol="5" if protocol == 5 else "3.1.1",
            max_inflight=100,
            reconnect=Backoff(1, 2),
        )
        self.client.connect("127.0.0.1", port, keepalive=keepalive)
        self.client.loop_start()
        wait_until(self.client.is_connected, timeout=10)

    def envelope(
        self,
        type_: str = "entry-granted",
        data: dict[str, Any] | None = None,
        channel: Channel = Channel.EVENTS,
        ts: datetime | None = None,
    ) -> Envelope:
        env = Envelope(
            event_id=new_id(),
            device_id=self.device_id,
            kind=self.kind,
            type=type_,
            seq=self.seq,
            ts=ts or datetime.now(UTC),
            data=data if data is not None else {"method": "card", "duration_ms": 1500},
        )
        self.seq += 1
        return env

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        return info

    def send(self, env: Envelope, channel: Channel = Channel.EVENTS) -> Envelope:
        self.publish_raw(str(Topic(self.kind, self.device_id, channel)), dumps(env))
        return env

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def own_backend(
    broker: BrokerProcess,
    creds_dir: Path,
    database_url: str,
    data_dir: Path,
    env: dict[str, str],
) -> Iterator[BackendProcess]:
    """For a fixture (`yield from`): a backend started with `env` added, stopped afterwards."""
    proc = BackendProcess(broker.port, creds_dir, database_url, data_dir, extra_env=env).start()
    yield proc
    proc.stop()


def command(backend: BackendProcess, device: str, name: str, **params: Any) -> dict[str, Any]:
    """Send a command through the API and wait for its final status."""
    resp = backend.post(f"/devices/{device}/commands", {"name": name, "params": params})
    assert resp.status_code == 202, resp.text
    cid = resp.json()["command_id"]

    def final() -> dict[str, Any] | None:
        cmd: dict[str, Any] = backend.get(f"/commands/{cid}")
        return cmd if cmd["status"] not in ("pending", "sent", "accepted") else None

    return wait_until(final, timeout=30)  # type: ignore[no-any-return]
