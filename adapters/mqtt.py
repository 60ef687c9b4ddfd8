"""The one paho client factory: protocol, credentials, session options, typed callbacks, back-off.

Devices, the backend, drills and tests all build their MQTT clients here, so paho's callback API
version, the persistent-session options and the reconnect rule are written down once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# paho's VERSION2 callback signatures; userdata is whatever the caller set (we set none).
OnConnect = Callable[[mqtt.Client, Any, mqtt.ConnectFlags, ReasonCode, Properties | None], None]
OnDisconnect = Callable[
    [mqtt.Client, Any, mqtt.DisconnectFlags, ReasonCode, Properties | None], None
]
OnMessage = Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]
OnPublish = Callable[[mqtt.Client, Any, int, ReasonCode, Properties | None], None]


def on_connack(handler: Callable[[ReasonCode], None]) -> OnConnect:
    """paho's on_connect for a handler that needs only the broker's answer (failure: refused)."""
    return lambda _client, _userdata, _flags, reason, _props: handler(reason)


def on_disconnected(handler: Callable[[ReasonCode], None]) -> OnDisconnect:
    """paho's on_disconnect for a handler that needs only the reason the connection ended."""
    return lambda _client, _userdata, _flags, reason, _props: handler(reason)


def protocol_version(protocol: str) -> MQTTProtocolVersion:
    """`"5"` is MQTT 5; anything else is MQTT 3.1.1 (what the embedded fallback broker speaks)."""
    return mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311


@dataclass(slots=True)
class Backoff:
    """The reconnect rule: wait `first` s, doubling after each failure up to `cap` s, and start
    again from `first` once connected. Sessions on our own loop (devices/loop.py) ask it for each
    delay; a client on paho's network thread is given the same rule (`make_client(reconnect=)`)."""

    first: float = 0.5
    cap: float = 10.0
    _delay: float = field(default=-1.0, repr=False)

    def next(self) -> float:
        """The delay before the next attempt (and the one after it doubles)."""
        delay = self.first if self._delay < 0 else self._delay
        self._delay = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._delay = -1.0


def make_client(
    client_id: str,
    username: str,
    password: str,
    *,
    protocol: str = "5",
    persistent: bool = False,
    manual_ack: bool = False,
    on_connect: OnConnect | None = None,
    on_disconnect: OnDisconnect | None = None,
    on_message: OnMessage | None = None,
    on_publish: OnPublish | None = None,
    max_inflight: int | None = None,
    max_queued: int | None = None,
    reconnect: Backoff | None = None,
) -> mqtt.Client:
    """A paho client (callback API version 2) logged in as `username`, not yet connected.

    `persistent` keeps the broker's session across connections: MQTT 3.1.1 says so here, MQTT 5
    when connecting (`connect_options`). `reconnect` sets paho's own retry delays, for clients
    driven by `loop_start()`; unset, paho's defaults apply."""
    proto = protocol_version(protocol)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=proto,
        clean_session=(not persistent) if proto == mqtt.MQTTv311 else None,
        manual_ack=manual_ack,
    )
    client.username_pw_set(username, password)
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    if max_queued is not None:
        client.max_queued_messages_set(max_queued)
    if reconnect is not None:
        # The same rule as Backoff.next; paho's signature asks for whole seconds.
        client.reconnect_delay_set(math.ceil(reconnect.first), math.ceil(reconnect.cap))
    if on_connect is not None:
        client.on_connect = on_connect
    if on_disconnect is not None:
        client.on_disconnect = on_disconnect
    if on_message is not None:
        client.on_message = on_message
    if on_publish is not None:
        client.on_publish = on_publish
    return client


class ConnectOptions(TypedDict, total=False):
    """Keyword arguments for paho's `connect` / `connect_async`."""

    clean_start: bool
    properties: Properties


def connect_options(protocol: str, *, persistent: bool, session_expiry_s: int) -> ConnectOptions:
    """paho's MQTT 5 default (clean start on the first connection, no expiry) loses a consumer's
    queued session whenever it restarts: a persistent session asks for clean_start=False and an
    expiry; any other asks for a clean start every time. MQTT 3.1.1 needs nothing here."""
    if protocol_version(protocol) != mqtt.MQTTv5:
        return {}
    if not persistent:
        return {"clean_start": True}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    return {"clean_start": False, "properties": props}
