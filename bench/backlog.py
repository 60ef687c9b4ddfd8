"""The drain benchmark's queue: a backlog of the street's envelopes, published at QoS 1."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from adapters.credentials import Credentials
from bench.common import emission_pool
from contracts.envelope import Envelope, new_id
from contracts.fleet import Fleet
from contracts.topics import Topic
from contracts.validation import dumps
from stack.processes import wait_until


def backlog_devices(fleet: Fleet) -> Fleet:
    """A few device clients: the first device of each kind of the default street."""
    seen: dict[str, Any] = {}
    for d in fleet.devices:
        seen.setdefault(d.kind, d)
    return fleet.model_copy(update={"devices": list(seen.values())})


# The backlog is what the street sent during an outage of the backend that has just ended.
OUTAGE_S = 1800.0


def build_backlog(fleet: Fleet, n: int) -> list[tuple[str, str, bytes]]:
    """(device id, topic, payload) in the order the devices would have sent them during an
    outage that has just ended: the street's simulated instants, squeezed into the last
    OUTAGE_S seconds (the few devices need days of simulated time for `n` messages, and the
    backend refuses device clocks more than a day off: `max_clock_skew_s`)."""
    pool = emission_pool(fleet, n)
    first, last = pool[0][1], pool[-1][1]
    squeeze = min(1.0, OUTAGE_S / max((last - first).total_seconds(), 1e-9))
    now = datetime.now(UTC)
    seq: dict[str, int] = {}
    boots = {d.id: new_id()[:12] for d in fleet.devices}
    out = []
    for i, due, em in pool:
        spec = fleet.devices[i]
        env = Envelope(
            event_id=new_id(),
            device_id=spec.id,
            kind=spec.kind,
            type=em.type,
            seq=seq.get(spec.id, 0),
            boot=boots[spec.id],
            ts=now - (last - due) * squeeze,
            correlation_id=em.correlation_id,
            data=em.data.model_dump(mode="json", exclude_none=True),
        )
        seq[spec.id] = seq.get(spec.id, 0) + 1
        out.append((spec.id, str(Topic(spec.kind, spec.id, em.channel)), dumps(env)))
    return out


def publish_backlog(port: int, creds: Credentials, backlog: list[tuple[str, str, bytes]]) -> float:
    """Publish at QoS 1 from each device's own client (its own credentials), wait for every
    PUBACK; returns messages/s."""
    acked = 0
    lock = threading.Lock()
    all_acked = threading.Event()

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1
            if acked >= len(backlog):
                all_acked.set()

    clients: dict[str, mqtt.Client] = {}
    for device_id in sorted({d for d, _, _ in backlog}):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
        c.username_pw_set(device_id, creds.devices[device_id])
        c.max_inflight_messages_set(100)
        c.on_publish = on_publish
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients[device_id] = c
    wait_until(lambda: all(c.is_connected() for c in clients.values()), timeout=15)
    t0 = time.monotonic()
    for device_id, topic, payload in backlog:
        clients[device_id].publish(topic, payload, qos=1)
    if not all_acked.wait(300):
        raise RuntimeError(f"only {acked}/{len(backlog)} publishes acknowledged")
    rate = len(backlog) / (time.monotonic() - t0)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()
    return rate
