"""Baseline consumer for the drain benchmark: a bare paho 2.x client with manual acks that does
nothing but acknowledge (the backend's ingest minus parsing, validation and the database).

    python -m bench.drain_worker create|drain PORT PASSWORD CLIENT_ID COUNT
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.ingest import INGEST_CHANNELS
from contracts.topics import subscription


def main() -> None:
    mode, port, password, client_id, count = sys.argv[1:6]
    want = int(count)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.username_pw_set("backend", password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    done = threading.Event()
    state: dict[str, Any] = {"n": 0, "first": 0.0, "last": 0.0}

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if mode == "create":
            c.subscribe([(subscription(ch), 1) for ch in INGEST_CHANNELS])

    def on_subscribe(*_a: Any) -> None:
        done.set()

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if not state["n"]:
            state["first"] = now
        state["n"] += 1
        state["last"] = now
        c.ack(msg.mid, msg.qos)
        if state["n"] >= want:
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", int(port), keepalive=60, clean_start=False, properties=props)
    client.loop_start()
    done.wait(600)
    time.sleep(0.2)  # let the last acks go out
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"count": state["n"], "first": state["first"], "last": state["last"]}))


if __name__ == "__main__":
    main()
