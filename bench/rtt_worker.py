"""Publish→subscribe round trip through one broker: a device client publishes valid envelopes at
QoS 1 at a fixed rate (or as fast as it can: RATE 0), a backend-user subscriber receives them;
MQTT 3.1.1 (what the embedded broker speaks).

    python -m bench.rtt_worker PORT DEVICE_ID DEVICE_PW BACKEND_PW RATE SECONDS|COUNT
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import percentile
from contracts.envelope import Envelope, new_id
from contracts.topics import Channel, Topic, subscription
from contracts.validation import dumps


def main() -> None:
    port, device_id, device_pw, backend_pw, rate_s, amount = sys.argv[1:7]
    rate = float(rate_s)
    got: dict[str, float] = {}
    subscribed = threading.Event()

    sub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench:rtt-sub:{new_id()[:8]}",
        protocol=mqtt.MQTTv311,
    )
    sub.username_pw_set("backend", backend_pw)
    sub.on_connect = lambda c, *_a: c.subscribe(subscription(Channel.EVENTS), 1)
    sub.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got[msg.payload[25:57].decode()] = time.time()  # the event id: a fixed offset (below)

    sub.on_message = on_message
    sub.connect("127.0.0.1", int(port), 30)
    sub.loop_start()
    if not subscribed.wait(15):
        raise SystemExit("subscriber not subscribed")

    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=device_id,
        protocol=mqtt.MQTTv311,
    )
    pub.username_pw_set(device_id, device_pw)
    pub.max_inflight_messages_set(100)
    acked = [0]

    def on_publish(*_a: Any) -> None:
        acked[0] += 1

    pub.on_publish = on_publish
    pub.connect("127.0.0.1", int(port), 30)
    pub.loop_start()
    deadline = time.monotonic() + 15
    while not pub.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    topic = str(Topic("gate", device_id, Channel.EVENTS))
    sent: dict[str, float] = {}
    data = {"method": "card", "direction": "in", "duration_ms": 1500}

    def publish(seq: int) -> None:
        env = Envelope(
            event_id=new_id(),
            device_id=device_id,
            kind="gate",
            type="entry-granted",
            seq=seq,
            ts=datetime.now(UTC),
            data=data,
        )
        payload = dumps(env)  # starts with {"version":1,"event_id":"<32 hex>"
        sent[env.event_id] = time.time()
        pub.publish(topic, payload, qos=1)

    start = time.monotonic()
    if rate > 0:
        end = start + float(amount)
        while (now := time.monotonic()) < end:
            due = int((now - start) * rate)
            while len(sent) < due:
                publish(len(sent))
            time.sleep(0.001)
    else:
        for i in range(int(amount)):
            publish(i)
    stop = time.monotonic()
    grace = time.monotonic() + 15
    while len(got) < len(sent) and time.monotonic() < grace:
        time.sleep(0.05)
    latencies = [(got[e] - t) * 1000 for e, t in sent.items() if e in got]
    first = min(got.values(), default=0.0)
    last = max(got.values(), default=0.0)
    print(
        json.dumps(
            {
                "rate": rate,
                "sent": len(sent),
                "offered_rate": len(sent) / (stop - start),
                "received": len(latencies),
                "lost": len(sent) - len(latencies),
                "acked_by_broker": acked[0],
                "received_rate": (len(latencies) - 1) / (last - first) if last > first else 0.0,
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "max_ms": max(latencies, default=float("nan")),
            }
        ),
        flush=True,
    )
    pub.disconnect()
    sub.disconnect()
    pub.loop_stop()
    sub.loop_stop()


if __name__ == "__main__":
    main()
