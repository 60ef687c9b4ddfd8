"""Baseline for the live benchmark: a bare paho subscriber (manual ack, nothing else) in place of
the backend; the arrival instant of each envelope is written out when stdin closes.

    python -m bench.live_sub PORT PASSWORD OUT
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contracts.topics import Channel, subscription


def main() -> None:
    port, password, out = sys.argv[1:4]
    got: list[tuple[float, bytes]] = []
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench:live-baseline",
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.username_pw_set("backend", password)

    def on_connect(c: mqtt.Client, *_a: Any) -> None:
        c.subscribe([(subscription(Channel.EVENTS), 1), (subscription(Channel.TELEMETRY), 1)])

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got.append((time.time(), bytes(msg.payload)))
        c.ack(msg.mid, msg.qos)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    client.connect("127.0.0.1", int(port), 30)
    client.loop_start()
    subscribed.wait(10)
    print(json.dumps({"event": "subscribed"}), flush=True)
    sys.stdin.read()
    time.sleep(1)
    client.disconnect()
    client.loop_stop()
    with open(out, "w") as f:
        for t, payload in got:
            env = json.loads(payload)
            f.write(f"{env['event_id']} {env['ts']} {t}\n")


if __name__ == "__main__":
    main()
