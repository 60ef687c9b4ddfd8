"""Record what devices publish (as the backend user sees it) to JSON Lines, and replay it
through the broker, each message published by its own device's credentials.

One line per message: {"t": receive time (UTC ISO), "topic", "payload" (UTF-8 text) or
"payload_b64", "retain", "qos"}. Envelopes are replayed with their event ids, sequence numbers
and device times, flagged `injected: true` with the replay's run id (so operators can tell a
replay from the street): a replay into a fresh database stores the same events by id, and a
replay into the database that already holds them stores nothing new (the backend keeps each
event id once, by design). Anything that is not an envelope is replayed byte for byte.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt

from adapters import credentials
from contracts.topics import Channel, Topic, TopicError, subscription
from scenarios.wire import Connection, DevicePublishers, ScenarioError, open_session

RECORDED_CHANNELS = (Channel.EVENTS, Channel.TELEMETRY, Channel.STATE, Channel.COMMAND_RESULTS)


@dataclass(frozen=True)
class Recorded:
    t: datetime
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1

    def to_json(self) -> str:
        line: dict[str, Any] = {"t": self.t.isoformat(), "topic": self.topic}
        try:
            line["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            line["payload_b64"] = base64.b64encode(self.payload).decode()
        line["retain"], line["qos"] = self.retain, self.qos
        return json.dumps(line, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Recorded:
        raw = json.loads(text)
        if "payload" in raw:
            payload = str(raw["payload"]).encode("utf-8")
        else:
            payload = base64.b64decode(raw["payload_b64"])
        return cls(
            t=datetime.fromisoformat(raw["t"]),
            topic=str(raw["topic"]),
            payload=payload,
            retain=bool(raw.get("retain", False)),
            qos=int(raw.get("qos", 1)),
        )


def read_recording(path: Path) -> Iterator[Recorded]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield Recorded.from_json(line)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ScenarioError(f"{path}:{n}: not a recorded message ({exc})") from None


def record(
    conn: Connection,
    out: TextIO,
    duration_s: float,
    on_message: Callable[[int], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Subscribe as the backend user (a throwaway session, so the backend's own persistent
    session is untouched) and write each message with its receive time. Returns the count."""
    try:
        password = credentials.load(conn.credentials_dir).backend_password
    except (OSError, ValueError, KeyError) as exc:
        raise ScenarioError(f"cannot read credentials in {conn.credentials_dir}: {exc}") from None
    lock = threading.Lock()
    count = 0
    subscribed = threading.Event()

    def on_msg(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        item = Recorded(datetime.now(UTC), msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos)
        with lock:
            out.write(item.to_json() + "\n")
            out.flush()
            count += 1
            n = count
        if on_message:
            on_message(n)

    def subscribe(c: mqtt.Client) -> None:
        c.on_message = on_msg
        c.on_subscribe = lambda *_a: subscribed.set()
        c.subscribe([(subscription(ch), 1) for ch in RECORDED_CHANNELS])

    client_id = f"scenario:recorder:{uuid.uuid4().hex[:12]}"
    client = open_session(conn, client_id, credentials.BACKEND_USER, password, subscribe)
    try:
        deadline = time.monotonic() + 10
        while not subscribed.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not subscribed.is_set():
            raise ScenarioError("recorder not subscribed: the broker did not confirm in 10 s")
        if on_ready is not None:
            on_ready()
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    finally:
        client.disconnect()
        client.loop_stop()
    return count


def tagged(payload: bytes, run_id: str) -> bytes:
    """The envelope flagged as injected by this replay (same event id); other bytes as they are
    (a corrupt recorded message stays corrupt: the backend dead-letters it again)."""
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload
    if not isinstance(raw, dict) or "event_id" not in raw:
        return payload
    raw["injected"], raw["run_id"] = True, run_id
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()


def replay(
    conn: Connection,
    items: list[Recorded],
    speed: float = 1.0,
    on_message: Callable[[int, Recorded], None] | None = None,
    run_id: str | None = None,
) -> int:
    """Republish each message as its own device, keeping the relative timing (divided by
    `speed`; 0 or less: as fast as possible), envelopes tagged with `run_id` if given.
    Envelope channels are never retained; the state channel keeps the retain flag the contract
    gives it."""
    if not items:
        return 0
    for item in items:
        try:
            topic = Topic.parse(item.topic)
        except TopicError as exc:
            raise ScenarioError(f"cannot replay {item.topic!r}: {exc}") from None
        if topic.channel is Channel.COMMANDS:
            raise ScenarioError("commands are the backend's: a recording must not hold them")
    t0 = items[0].t
    start = time.monotonic()
    n = 0
    with DevicePublishers(conn) as devices:
        for item in items:
            if speed > 0:
                delay = start + (item.t - t0).total_seconds() / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            topic = Topic.parse(item.topic)
            retain = topic.channel is Channel.STATE
            payload = item.payload if run_id is None or retain else tagged(item.payload, run_id)
            devices.publish_raw(topic.device_id, item.topic, payload, retain=retain)
            n += 1
            if on_message:
                on_message(n, item)
    return n
