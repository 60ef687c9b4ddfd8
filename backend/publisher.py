"""The backend's outgoing MQTT session: injected events and commands, QoS 1, never retained."""

from __future__ import annotations

import logging
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from adapters.mqtt import on_connack, on_disconnected
from backend.config import Settings
from backend.mqtt_client import connect_in_background, make_client
from contracts.topics import CHANNEL_RULES, Topic

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not take the message (not connected, refused, or no ack in time)."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Its own client id: reusing the ingest id would kick the ingest session off the broker.
        self.connected = threading.Event()
        self.client = make_client(
            settings,
            f"lijia-backend-out-{uuid.uuid4().hex[:8]}",
            persistent=False,
            on_connect=on_connack(self._on_connect),
            on_disconnect=on_disconnected(self._on_disconnect),
        )

    def start(self) -> None:
        connect_in_background(self.client, self.settings, persistent=False)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, reason: ReasonCode) -> None:
        if reason.is_failure:
            log.error("broker refused publisher connection: %s", reason)
        else:
            self.connected.set()

    def _on_disconnect(self, _reason: ReasonCode) -> None:
        self.connected.clear()

    def publish(self, topic: Topic, payload: bytes, timeout: float = 5.0) -> None:
        """Publish and wait for the broker's PUBACK."""
        if not self.connected.wait(timeout):
            raise PublishError("broker not connected")
        rule = CHANNEL_RULES[topic.channel]
        info = self.client.publish(str(topic), payload, qos=rule.qos, retain=rule.retained)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(str(exc)) from None
        if not info.is_published():
            raise PublishError("no acknowledgement from broker in time")
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(mqtt.error_string(info.rc))
