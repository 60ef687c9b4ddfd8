"""The backend's outgoing MQTT session: injected events, commands and clock controls, QoS 1, never
retained. It also follows the street's clock (backend/street_clock.py): a plain subscription,
not a shared one, so every replica sees every announcement."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from adapters.mqtt import on_connack, on_disconnected
from backend.config import Settings
from backend.mqtt_client import connect_in_background, make_client
from backend.street_clock import StreetClock
from contracts.topics import CHANNEL_RULES, Topic

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not take the message (not connected, refused, or no ack in time)."""


class Publisher:
    def __init__(self, settings: Settings, clock: StreetClock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self._connections = 0
        # Its own client id: reusing the ingest id would kick the ingest session off the broker.
        self.connected = threading.Event()
        self._barrier_mid: int | None = None  # the SUBSCRIBE after which the clock is known
        self.client = make_client(
            settings,
            f"backend:publisher:{uuid.uuid4().hex[:8]}",
            persistent=False,
            on_connect=on_connack(self._on_connect),
            on_disconnect=on_disconnected(self._on_disconnect),
            on_message=self._on_message,
        )
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        connect_in_background(self.client, self.settings, persistent=False)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, reason: ReasonCode) -> None:
        if reason.is_failure:
            log.error("broker refused publisher connection: %s", reason)
            return
        self.connected.set()
        if self.clock is not None:
            # A clean session each time: subscribe again (the retained announcements follow).
            self.clock.connected(first=self._connections == 0)
            self.client.subscribe([(topic, 1) for topic in self.clock.topics()])
            # A second SUBSCRIBE as a barrier: the broker sends the first one's retained
            # announcements before it answers this one, so at its SUBACK they have been read.
            _, self._barrier_mid = self.client.subscribe(self.clock.topics()[-1], 1)
        self._connections += 1

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        if self.clock is not None and mid == self._barrier_mid:
            self.clock.subscribed()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.clock is not None:
            self.clock.on_message(msg.topic, bytes(msg.payload))

    def _on_disconnect(self, _reason: ReasonCode) -> None:
        self.connected.clear()

    def publish(self, topic: Topic, payload: bytes, timeout: float = 5.0) -> None:
        """Publish on a device's topic and wait for the broker's PUBACK."""
        rule = CHANNEL_RULES[topic.channel]
        self.publish_raw(str(topic), payload, qos=rule.qos, retain=rule.retained, timeout=timeout)

    def publish_control(self, topic: str, payload: bytes) -> None:
        """A control-plane message (e.g. a clock control): QoS 1, never retained."""
        self.publish_raw(topic, payload, qos=1, retain=False)

    def publish_raw(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, timeout: float = 5.0
    ) -> None:
        """Publish and wait for the broker's PUBACK."""
        if not self.connected.wait(timeout):
            raise PublishError("broker not connected")
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(str(exc)) from None
        if not info.is_published():
            raise PublishError("no acknowledgement from broker in time")
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(mqtt.error_string(info.rc))
