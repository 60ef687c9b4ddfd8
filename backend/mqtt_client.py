"""Building paho clients for the backend: protocol, credentials and persistent-session options."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.config import Settings


def protocol(settings: Settings) -> MQTTProtocolVersion:
    return mqtt.MQTTv5 if settings.mqtt_protocol == "5" else mqtt.MQTTv311


def make_client(settings: Settings, client_id: str, *, persistent: bool) -> mqtt.Client:
    proto = protocol(settings)
    kwargs: dict[str, Any] = {}
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=proto,
        manual_ack=persistent,
        **kwargs,
    )
    client.username_pw_set(settings.mqtt_username, settings.backend_password())
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_kwargs(settings: Settings, *, persistent: bool) -> dict[str, Any]:
    """paho's MQTT 5 default (clean_start=True, no expiry) wipes our queued session on every
    connect (FACTS.md); a persistent consumer asks for clean_start=False and an expiry."""
    if protocol(settings) != mqtt.MQTTv5:
        return {}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if persistent:
        props.SessionExpiryInterval = settings.session_expiry_s
        return {"clean_start": False, "properties": props}
    return {"clean_start": True}
