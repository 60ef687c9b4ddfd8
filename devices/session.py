"""One device's MQTT session: credentials, Last Will, availability, envelopes, commands."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from adapters.mqtt import Backoff, make_client
from contracts.catalogue import get_kind
from contracts.envelope import (
    COMMAND_RESULT_TYPE,
    Availability,
    Command,
    CommandResult,
    Envelope,
    new_id,
)
from contracts.topics import CHANNEL_RULES, Channel, Topic
from contracts.validation import dumps
from contracts.vocabulary import CommandResultStatus
from devices.behaviour import Behaviour, Emission
from devices.clock import SimClock
from devices.faults import NetworkFaults
from devices.loop import MqttLoop
from devices.outbox import Outbox
from devices.stats import FleetStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerAddress:
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: str = "5"  # "5" or "3.1.1" (the embedded fallback broker)
    keepalive: int = 30


class DeviceSession:
    """Wraps a Behaviour in its own paho client, driven by the shared MqttLoop.

    The session does not decide when the behaviour wakes (the runner steps the whole street in
    simulated-time order); it connects, publishes what it is given and applies commands.
    """

    # Drills (devices/control.py): network trouble; taken off the network until `come_back`.
    net: NetworkFaults | None = None
    away: bool = False

    def __init__(
        self,
        behaviour: Behaviour,
        password: str,
        loop: MqttLoop,
        clock: SimClock,
        broker: BrokerAddress,
        stats: FleetStats,
        *,
        on_change: Callable[[], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.behaviour = behaviour
        self.device_id = behaviour.spec.id
        self.kind = behaviour.kind
        self.spec = get_kind(self.kind)
        self.loop = loop
        self.clock = clock
        self.broker = broker
        self.stats = stats
        self.seq = 0
        # A new boot id per process start: the backend tracks seq per (device, boot).
        self.boot = new_id()[:12]
        self.skipped = False  # a jump skipped some of its emissions (see `skip`)
        self.online = False
        self.closing = False
        self.settled = False
        self.refused = False
        # Our publishes the broker has not acknowledged yet (queued in paho or in flight).
        self.pending = 0
        # What the broker acknowledged in the last few seconds, published again after a
        # reconnect: a broker killed between its ack and its next save lost it (devices/outbox.py).
        self.outbox = Outbox(max_pending=10_000)
        self._resending = False  # copies from the outbox are not counted as new publishes
        self._warned = False
        # Called after a command changed the behaviour: its next wake-up may have moved.
        self.on_change = on_change
        # The simulated instant a command is applied at (the runner keeps it in step with the
        # street, which may lag the clock under back-pressure).
        self.now = now or clock.now
        # False while the runner has not started the behaviour yet: commands are turned down.
        self.ready = True
        self.backoff = Backoff()
        self._attempt = 0  # the newest scheduled connection attempt (see _reconnect_in)
        self.connecting = False  # connect() was called: attempts are under way
        # User name and client id are the device id: the broker accepts these credentials with
        # no other client id, and its role confines the device to lijia/{kind}/{id}/...
        self.client = make_client(
            self.device_id,
            self.device_id,
            password,
            protocol=broker.protocol,
            max_queued=10_000,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_publish=self._on_publish,
        )
        will = Availability(status="offline", reason="last-will")
        self.client.will_set(str(self.topic(Channel.STATE)), dumps(will), qos=1, retain=True)
        self.client.message_callback_add(str(self.topic(Channel.COMMANDS)), self._on_command)
        loop.attach(self.client)

    def topic(self, channel: Channel) -> Topic:
        return Topic(self.kind, self.device_id, channel)

    # -- connection --------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the connection (the CONNACK arrives through the loop); retried with back-off."""
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive)
        self.connecting = True
        self._reconnect()

    def _settle(self) -> None:
        if not self.settled:
            self.settled = True
            self.stats.settled += 1

    def _reconnect_in(self, delay: float) -> None:
        """The next connection attempt in `delay` s. The newest schedule wins: the end of a
        drill's outage must not wait for an older back-off timer."""
        self._attempt += 1
        attempt = self._attempt
        self.loop.call_later(delay, lambda: self._reconnect(attempt))

    def _reconnect(self, attempt: int = 0) -> None:
        if self.closing or (attempt and attempt != self._attempt):
            return
        if self.away:  # a drill took the device off the network: back at `come_back`
            return
        try:
            self.client.reconnect()
        except OSError:
            self._settle()
            self._reconnect_in(self.backoff.next())

    def _on_connect(
        self,
        client: mqtt.Client,
        _u: Any,
        _f: mqtt.ConnectFlags,
        rc: ReasonCode,
        _p: Properties | None,
    ) -> None:
        self._settle()
        if rc.is_failure:
            if self.device_id not in self.stats.refused:
                log.error("broker refused %s: %s", self.device_id, rc)
            self.stats.refused.add(self.device_id)
            self.refused = True
            return
        if self.away:
            # A drill took the device off while this connection was on its way: it goes again.
            self._cut_link()
            return
        self.backoff.reset()
        self.refused = False
        self.stats.refused.discard(self.device_id)
        self.online = True
        self.stats.connected += 1
        self.stats.backlog += self.pending
        self.stats.held -= self.pending
        online = Availability(status="online", reason="connected", ts=datetime.now(UTC))
        self._publish(Channel.STATE, dumps(online))
        # After a lost connection: the recently acknowledged window again, same bytes, same
        # event ids (the backend keeps one copy). paho then sends its unacknowledged messages.
        self._resending = True
        again = self.outbox.take()
        self.stats.resent += len(again)
        for channel, payload in again:
            self._publish(channel, payload)
        self._resending = False
        client.subscribe(str(self.topic(Channel.COMMANDS)), qos=1)

    def _on_disconnect(
        self,
        _c: mqtt.Client,
        _u: Any,
        _f: mqtt.DisconnectFlags,
        _rc: ReasonCode,
        _p: Properties | None,
    ) -> None:
        if self.online:
            self.stats.connected -= 1
            self.stats.backlog -= self.pending
            self.stats.held += self.pending
        self.online = False
        if not self.closing:
            self._reconnect_in(self.backoff.next())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Clean shutdown: say so on the state topic (no Last Will), then disconnect.

        The goodbye may queue behind messages still in flight, and DISCONNECT would overtake it,
        so we disconnect only once the broker has acknowledged the goodbye (or after `timeout`).
        """
        self.closing = True
        if not self.online:
            self._disconnect()
            return
        self._goodbye(timeout, self._disconnect)

    def _goodbye(self, timeout: float, then: Callable[[], object]) -> None:
        """Publish the clean-shutdown state, and call `then` once the broker has acknowledged it,
        the connection is gone, or `timeout` s have passed."""
        bye = Availability(status="offline", reason="clean-shutdown", ts=datetime.now(UTC))
        info = self._publish(Channel.STATE, dumps(bye))
        deadline = time.monotonic() + timeout

        def finish() -> None:
            if info.is_published() or time.monotonic() > deadline or not self.online:
                then()
            else:
                self.loop.call_later(0.02, finish)

        finish()

    def _disconnect(self) -> None:
        self.client.disconnect()
        self.loop.detach(self.client)

    # -- publishing --------------------------------------------------------------------------
    def _publish(self, channel: Channel, payload: bytes) -> mqtt.MQTTMessageInfo:
        rule = CHANNEL_RULES[channel]
        info = self.client.publish(str(self.topic(channel)), payload, rule.qos, rule.retained)
        # NO_CONN: paho keeps QoS 1 messages and sends them after the reconnect.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.stats.errors += 1
            if not self._warned:  # once per device: a full queue would say so for every message
                self._warned = True
                log.warning("%s: publish failed: %s", self.device_id, mqtt.error_string(info.rc))
        else:
            if not self._resending:
                self.stats.published += 1
                if channel is Channel.EVENTS:
                    self.stats.events += 1
            if rule.qos:
                self.outbox.sent(info.mid, channel, payload)
                self.pending += 1
                if self.online:
                    self.stats.backlog += 1
                else:
                    self.stats.held += 1
        return info

    def _on_publish(
        self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        # Called once per QoS 1 message, when its PUBACK arrives (so only while online).
        self.outbox.acked(mid, accepted=not rc.is_failure)
        self.pending -= 1
        if self.online:
            self.stats.backlog -= 1
        else:
            self.stats.held -= 1

    def _envelope(
        self, type_: str, ts: datetime, correlation_id: str | None, data: dict[str, Any]
    ) -> Envelope:
        """The next envelope of this boot: a new event id and the next sequence number."""
        env = Envelope(
            event_id=new_id(),
            device_id=self.device_id,
            kind=self.kind,
            type=type_,
            seq=self.seq,
            boot=self.boot,
            ts=ts,
            correlation_id=correlation_id,
            data=data,
        )
        self.seq += 1
        return env

    def skip(self) -> None:
        """An emission a clock jump skips (contracts/clock.py): not published, but it uses its
        sequence number, so the same (device, seq) is the same event whenever the jump was
        asked (the street's emissions do not depend on it)."""
        self.seq += 1
        self.skipped = True

    def after_skip(self) -> None:
        """After a jump: a device that skipped emissions starts a new boot, so the numbers it
        used without publishing are no gap (loss is counted per boot, backend/quality.py)."""
        if self.skipped:
            self.boot = new_id()[:12]
            self.skipped = False

    def emit(self, emission: Emission, ts: datetime) -> Envelope:
        net = self.net
        if net is not None and not net.active:
            self.end_network()
            net = None
        if net is not None and net.spec.skew_s:
            ts += timedelta(seconds=net.spec.skew_s)  # the device's clock is off, not the world
        data = emission.data.model_dump(mode="json", exclude_none=True)
        env = self._envelope(emission.type, ts, emission.correlation_id, data)
        if self.refused:
            self.stats.dropped += 1  # the broker will not take it: do not pile it up in paho
        elif net is None:
            self._publish(emission.channel, dumps(env))
        else:
            for channel, payload in net.outgoing(emission.channel, dumps(env)):
                if net.spec.delay_s:
                    # Held back, it counts like a publish waiting for the broker: the runner's
                    # back-pressure then bounds what a long delay keeps in memory.
                    self.stats.backlog += 1
                    self.loop.call_later(net.spec.delay_s, partial(self._send, channel, payload))
                else:
                    self._publish(channel, payload)
        return env

    # -- drills (devices/control.py) -----------------------------------------------------------
    def _send(self, channel: Channel, payload: bytes) -> None:
        """A delayed message's turn."""
        self.stats.backlog -= 1
        self._publish(channel, payload)

    def troubled_network(self, faults: NetworkFaults) -> None:
        """Network trouble on this device's events and telemetry until `faults.until`."""
        self.end_network()
        self.net = faults

    def end_network(self) -> None:
        net, self.net = self.net, None
        if net is not None:
            for channel, payload in net.flush():
                self._publish(channel, payload)

    def leave_network(self, abrupt: bool) -> None:
        """Off the network until `come_back` (the control plane calls it when the outage ends).

        Abrupt: the link just goes (the socket is shut without DISCONNECT), so the broker
        publishes the Last Will. Clean: the device says goodbye, then disconnects. Either way it
        keeps running and queues what it publishes meanwhile (paho keeps QoS 1 messages)."""
        self.away = True
        if not self.online:
            return
        if abrupt:
            self._cut_link()
        else:
            self._goodbye(5.0, self.client.disconnect)

    def come_back(self) -> None:
        """The end of an outage: reconnect now (as after any loss)."""
        self.away = False
        if not self.online and self.connecting and not self.closing:
            self._reconnect_in(0.0)

    def _cut_link(self) -> None:
        """Shut the socket without DISCONNECT: to the broker, a lost link (it sends the Will)."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- commands ----------------------------------------------------------------------------
    def _result(
        self, command_id: str, status: CommandResultStatus, reason: str | None = None
    ) -> None:
        result = CommandResult(command_id=command_id, status=status, reason=reason)
        data = result.model_dump(mode="json", exclude_none=True)
        env = self._envelope(COMMAND_RESULT_TYPE, self.now(), command_id, data)
        self._publish(Channel.COMMAND_RESULTS, dumps(env))

    def _on_command(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.stats.commands += 1
            try:
                command = Command.model_validate_json(msg.payload)
            except ValidationError:
                log.warning("%s: unreadable command ignored", self.device_id)
                return
            model = self.spec.commands.get(command.name)
            if model is None:
                self._result(
                    command.command_id,
                    CommandResultStatus.REJECTED,
                    f"unknown command {command.name}",
                )
                return
            try:
                params = model.model_validate(command.params)
            except ValidationError:
                self._result(command.command_id, CommandResultStatus.REJECTED, "invalid parameters")
                return
            if not self.ready:
                self._result(
                    command.command_id, CommandResultStatus.REJECTED, "device is starting up"
                )
                return
            self._result(command.command_id, CommandResultStatus.ACCEPTED)
            now = self.now()
            outcome = self.behaviour.handle(command, params, now)
            for emission in outcome.emissions:
                self.emit(emission, now)
            self._result(command.command_id, outcome.status, outcome.reason)
            if self.on_change is not None:
                self.on_change()
        except Exception:
            self.stats.errors += 1
            log.exception("%s: command handling failed", self.device_id)
