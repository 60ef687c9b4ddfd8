"""The simulator's control plane: applies drills' actions (contracts/simulation.py) to the
devices this process hosts, and answers each with the devices it applied it to; announces the
street's clock and applies the operator's clock controls (contracts/clock.py).

One extra MQTT session (user `simulator`) on the runner's loop, so every action runs in the
loop's thread, between two steps of the street: no locks, and the behaviour sees the same
street instant a command would. Each action ends after `for_s` street seconds, by a street-time
timer of the runner (so at max, paused or across a jump it ends at its place in the street), or
after `for_s` wall seconds by a loop timer if it says `clock: wall`; a newer action of the same
sort on the same device supersedes the older one's end.

The clock: the session's Last Will (empty, retained) clears this simulator's announcement on
`clock_topic(name)` if the process dies; it announces its ClockState (retained) once the street's
clock has begun, after every change, every MAX_ANNOUNCE_S at max, and clears it on a clean
shutdown. A ClockControl is checked (contracts.clock.check), applied and acknowledged.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from adapters.mqtt import Backoff, make_client, on_connack, on_disconnected
from contracts.clock import (
    CLOCK_ACK_TOPIC,
    CLOCK_CONTROL_TOPIC,
    MAX,
    MAX_ANNOUNCE_S,
    ClockAck,
    ClockControl,
    ClockRefused,
    ClockState,
    check,
    clock_topic,
    parse_speed,
)
from contracts.envelope import new_id
from contracts.simulation import (
    ACK_TOPIC,
    CONTROL_TOPIC,
    SIMULATOR_USER,
    Action,
    Control,
    ControlAck,
    FaultAction,
    LoadAction,
    NetworkAction,
    OfflineAction,
)
from devices.behaviour import UnsupportedFault
from devices.faults import NetworkFaults
from devices.session import BrokerAddress, DeviceSession

if TYPE_CHECKING:
    from devices.runner import FleetRunner

log = logging.getLogger(__name__)


class SimulatorControl:
    def __init__(self, runner: FleetRunner, password: str, broker: BrokerAddress) -> None:
        self.runner = runner
        self.name = f"sim-{new_id()[:8]}"
        self.sessions = {s.device_id: (i, s) for i, s in enumerate(runner.sessions)}
        self._generation: dict[tuple[str, str], int] = {}
        self.applied = 0
        # A `:` keeps the client id apart from every device id (contracts.topics.LEVEL_RE):
        # device credentials work only with their own device id as client id.
        self.client = make_client(
            f"simulator:{self.name}",
            SIMULATOR_USER,
            password,
            protocol=broker.protocol,
            on_connect=on_connack(self._on_connect),
            on_disconnect=on_disconnected(self._on_disconnect),
        )
        self.client.message_callback_add(CONTROL_TOPIC, self._on_control)
        self.client.message_callback_add(CLOCK_CONTROL_TOPIC, self._on_clock_control)
        # If this process dies, the broker clears its clock announcement.
        self.client.will_set(clock_topic(self.name), b"", qos=1, retain=True)
        self._seq = 0
        self._last_control: str | None = None
        self._ticking = False  # the regular announcement at max is scheduled
        self.broker = broker
        self.loop = runner.loop
        self.closing = False
        self.backoff = Backoff()
        self.loop.attach(self.client)

    # -- session -----------------------------------------------------------------------------
    def connect(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive)
        self._reconnect()

    def _reconnect(self) -> None:
        if self.closing:
            return
        try:
            self.client.reconnect()
        except OSError:
            self._retry()

    def _retry(self) -> None:
        self.loop.call_later(self.backoff.next(), self._reconnect)

    def _on_connect(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            log.error("broker refused the simulator's control session: %s", rc)
            return
        self.backoff.reset()
        self.client.subscribe([(CONTROL_TOPIC, 1), (CLOCK_CONTROL_TOPIC, 1)])
        self.announce()

    def _on_disconnect(self, _rc: ReasonCode) -> None:
        if not self.closing:
            self._retry()

    def close(self) -> None:
        self.closing = True
        if self.client.is_connected():
            # Queued before DISCONNECT, so the broker clears the announcement first.
            self.client.publish(clock_topic(self.name), b"", qos=1, retain=True)
        self.client.disconnect()
        self.loop.detach(self.client)

    # -- the street's clock ------------------------------------------------------------------
    def state(self) -> ClockState:
        """The clock as it stands (the next announcement's sequence number)."""
        runner, clock = self.runner, self.runner.clock
        jumping = runner.jumping_to is not None
        wall, street = clock.wall0, clock.street0
        if clock.max_speed:
            wall, street = datetime.now(UTC), clock.now()
        return ClockState(
            simulator=self.name,
            seq=self._seq,
            wall=wall,
            street=street,
            speed=MAX if clock.speed is None else clock.speed,
            paused=runner.jump_paused if jumping else clock.paused,
            jumping_to=runner.jumping_to,
            seed=runner.seed,
            start=clock.start,
            control=self._last_control,
        )

    def announce(self, state: ClockState | None = None) -> None:
        """Publish the clock (retained), once the street's clock has begun."""
        if not self.runner.began or not self.client.is_connected():
            return
        state = state or self.state()
        self._seq = state.seq + 1
        payload = json.dumps(state.model_dump(mode="json"))
        self.client.publish(clock_topic(self.name), payload, qos=1, retain=True)
        if not self._ticking:
            self._ticking = True
            self._keep_announcing()

    def _keep_announcing(self) -> None:
        """At max the street's time moves without a change: say how far it got, regularly."""

        def again() -> None:
            if self.closing:
                return
            if self.runner.clock.max_speed and self.runner.jumping_to is None:
                self.announce()
            self.loop.call_later(MAX_ANNOUNCE_S, again)

        self.loop.call_later(MAX_ANNOUNCE_S, again)

    def _on_clock_control(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            control = ClockControl.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("unreadable clock control ignored: %s", exc.errors()[0]["msg"])
            return
        runner, clock, do = self.runner, self.runner.clock, control.do
        try:
            if not runner.began:
                raise ClockRefused("the street is still starting up (devices connecting)")
            target = check(do, self.state(), clock.now())
        except ClockRefused as exc:
            ack = ClockAck(
                id=control.id, simulator=self.name, ok=False, reason=str(exc), clock=self.state()
            )
            self.client.publish(CLOCK_ACK_TOPIC, json.dumps(ack.model_dump(mode="json")), qos=1)
            return
        if do.action == "pause":
            clock.pause()
        elif do.action == "resume":
            clock.resume()
        elif do.action == "speed":
            assert do.speed is not None
            clock.set_speed(parse_speed(do.speed))
        else:
            assert target is not None
            runner.jump(target)
        self._last_control = control.id
        log.info("clock: %s (%s) -> %s", do.action, control.id, runner.clock_label())
        state = self.state()
        ack = ClockAck(id=control.id, simulator=self.name, ok=True, clock=state)
        self.client.publish(CLOCK_ACK_TOPIC, json.dumps(ack.model_dump(mode="json")), qos=1)
        self.announce(state)

    # -- actions -----------------------------------------------------------------------------
    def _on_control(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            control = Control.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("unreadable control message ignored: %s", exc.errors()[0]["msg"])
            return
        ack = ControlAck(id=control.id, simulator=self.name)
        for device_id in control.devices:
            hosted = self.sessions.get(device_id)
            if hosted is None:
                continue  # another simulator process hosts it (or none does)
            try:
                self.apply(control, *hosted)
                ack.applied.append(device_id)
            except UnsupportedFault as exc:
                ack.refused[device_id] = str(exc)
            except Exception:
                log.exception("%s: control action failed", device_id)
                ack.refused[device_id] = "the simulator failed to apply it (see its log)"
        if ack.applied or ack.refused:
            self.applied += len(ack.applied)
            what, run = control.do.action, control.run_id or "-"
            log.info("drill %s: %s on %d device(s)", run, what, len(ack.applied))
            self.client.publish(ACK_TOPIC, json.dumps(ack.model_dump(mode="json")), qos=1)

    def apply(self, control: Control, index: int, session: DeviceSession) -> None:
        do = control.do
        if not session.ready:
            raise UnsupportedFault("the device is still starting up")
        street = do.clock == "street"
        if isinstance(do, FaultAction):
            behaviour = session.behaviour
            self._emit(
                index, session, behaviour.fault(do.fault, True, session.now(), do.drift_per_min)
            )

            def repaired() -> None:
                self._emit(index, session, behaviour.fault(do.fault, False, session.now()))

            self._later(session, do.fault, do, repaired)
        elif isinstance(do, NetworkAction):
            rng = random.Random(f"{control.id}:{session.device_id}")
            until = math.inf if street else time.monotonic() + do.for_s
            session.troubled_network(NetworkFaults(do, rng, until))
            self._later(session, "network", do, session.end_network)
        elif isinstance(do, OfflineAction):
            session.leave_network(do.mode == "abrupt")
            self._later(session, "offline", do, session.come_back)
        elif isinstance(do, LoadAction):
            if not session.behaviour.set_load(session.now(), do.factor, do.per_hour):
                raise UnsupportedFault(f"a {session.kind} has no arrivals to change")
            self.runner.street.touch(index)

            def back_to_normal() -> None:
                session.behaviour.set_load(session.now(), None, None)
                self.runner.street.touch(index)

            self._later(session, "load", do, back_to_normal)

    def _emit(self, index: int, session: DeviceSession, emissions: list[Any]) -> None:
        if self.runner.silent:  # a jump drops what the skipped span would publish
            for _ in emissions:
                session.skip()
        else:
            now = session.now()
            for emission in emissions:
                session.emit(emission, now)
        self.runner.street.touch(index)  # its next wake-up may have moved

    def _later(
        self, session: DeviceSession, what: str, do: Action, end: Callable[[], None]
    ) -> None:
        """Run `end` after `do.for_s` street seconds (wall seconds if `do.clock` is "wall"),
        unless a newer action of the same sort came meanwhile."""
        key = (session.device_id, what)
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation

        def maybe_end() -> None:
            if self._generation.get(key) == generation:
                end()

        if do.clock == "wall":
            self.loop.call_later(do.for_s, maybe_end)
        else:
            at = session.now() + timedelta(seconds=do.for_s)
            self.runner.call_at_street(at, maybe_end)
