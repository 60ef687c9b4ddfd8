"""The backend's paho clients: its settings (user, protocol, session expiry) on adapters.mqtt."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from adapters.mqtt import (
    Backoff,
    ConnectOptions,
    OnConnect,
    OnDisconnect,
    OnMessage,
    connect_options,
)
from adapters.mqtt import make_client as new_client
from backend.config import Settings

# The backend's sessions run on paho's network thread (loop_start): 1 s, doubling up to 10 s.
RECONNECT_FIRST_S = 1
RECONNECT_CAP_S = 10


def make_client(
    settings: Settings,
    client_id: str,
    *,
    persistent: bool,
    on_connect: OnConnect | None = None,
    on_disconnect: OnDisconnect | None = None,
    on_message: OnMessage | None = None,
) -> mqtt.Client:
    """A persistent client acknowledges by hand (after the commit: backend/ingest/commit.py)."""
    return new_client(
        client_id,
        settings.mqtt_username,
        settings.backend_password(),
        protocol=settings.mqtt_protocol,
        persistent=persistent,
        manual_ack=persistent,
        on_connect=on_connect,
        on_disconnect=on_disconnect,
        on_message=on_message,
        reconnect=Backoff(RECONNECT_FIRST_S, RECONNECT_CAP_S),
    )


def connect_kwargs(settings: Settings, *, persistent: bool) -> ConnectOptions:
    """Session options for `connect_async`: see adapters.mqtt.connect_options."""
    return connect_options(
        settings.mqtt_protocol, persistent=persistent, session_expiry_s=settings.session_expiry_s
    )


def connect_in_background(client: mqtt.Client, settings: Settings, *, persistent: bool) -> None:
    """Connect in the background and start paho's network thread, which reconnects by itself."""
    client.connect_async(
        settings.mqtt_host,
        settings.mqtt_port,
        keepalive=settings.mqtt_keepalive_s,
        **connect_kwargs(settings, persistent=persistent),
    )
    client.loop_start()
