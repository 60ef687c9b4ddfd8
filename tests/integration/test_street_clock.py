"""The street's clock, steered (issue 13): a real Mosquitto with the project's ACL and real
simulator processes; the test talks to them as the backend user does (contracts/clock.py).

Timing is never a threshold here: every wait is a polling deadline, and what is compared are
street timestamps and counts from seeded runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from adapters.credentials import BACKEND_USER, Credentials
from adapters.mqtt import make_client
from contracts.clock import (
    CLOCK_ACK_TOPIC,
    CLOCK_CONTROL_TOPIC,
    CLOCK_FILTER,
    ClockAck,
    ClockAction,
    ClockControl,
    ClockState,
    newest,
    street_now,
)
from contracts.envelope import new_id
from contracts.simulation import ACK_TOPIC, CONTROL_TOPIC, Control, ControlAck, OfflineAction
from contracts.vocabulary import STREET_TZ
from stack.broker import BrokerProcess
from stack.processes import Simulator, wait_until

pytestmark = pytest.mark.integration

GATES = ["gate-north", "gate-south", "gate-east", "gate-lijia-west", "gate-tianyue-south",
         "gate-longtang"]  # fmt: skip
# A weekday (Tuesday) in Chongqing.
DAY = datetime(2026, 11, 24, tzinfo=STREET_TZ)
Row = tuple[str, int, str, datetime, Any]  # (device, seq, type, street ts, data)


class Street:
    """What the backend user sees of the street: clock announcements, clock acks, drill acks,
    and the devices' envelopes and availability, in the order the broker delivered them."""

    def __init__(self, port: int, creds: Credentials) -> None:
        self.lock = threading.Lock()
        self.states: dict[str, ClockState | None] = {}
        self.clock_acks: dict[str, ClockAck] = {}
        self.drill_acks: dict[str, ControlAck] = {}
        # (topic, decoded payload or None) in arrival order: envelopes and availability.
        self.log: list[tuple[str, dict[str, Any] | None]] = []
        self.client = make_client(
            f"test-clock-{time.monotonic_ns()}", BACKEND_USER, creds.backend_password
        )
        self.subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        assert not rc.is_failure
        topics = [CLOCK_FILTER, CLOCK_ACK_TOPIC, ACK_TOPIC, "lijia/+/+/events",
                  "lijia/+/+/telemetry", "lijia/+/+/state"]  # fmt: skip
        c.subscribe([(t, 1) for t in topics])

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            if msg.topic.startswith("lijia/sim/clock/"):
                name = msg.topic.rsplit("/", 1)[1]
                payload = msg.payload
                self.states[name] = ClockState.model_validate_json(payload) if payload else None
            elif msg.topic == CLOCK_ACK_TOPIC:
                ack = ClockAck.model_validate_json(msg.payload)
                self.clock_acks[ack.id] = ack
            elif msg.topic == ACK_TOPIC:
                drill = ControlAck.model_validate_json(msg.payload)
                self.drill_acks[drill.id] = drill
            else:
                self.log.append((msg.topic, json.loads(msg.payload) if msg.payload else None))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- the clock ---------------------------------------------------------------------------
    def state(self) -> ClockState | None:
        with self.lock:
            return newest(s for s in self.states.values() if s is not None)

    def wait_state(self, timeout: float = 60) -> ClockState:
        state: ClockState = wait_until(self.state, timeout=timeout)
        return state

    def now(self) -> datetime:
        """Street time by the newest announcement."""
        return street_now(self.wait_state())

    def wait_street(self, at: datetime, timeout: float = 60) -> None:
        wait_until(lambda: self.now() >= at, timeout=timeout)

    def control(self, action: ClockAction, timeout: float = 30) -> ClockAck:
        """Send one clock control as the backend does, and wait for the simulator's answer."""
        control = ClockControl(id=new_id(), do=action)
        self.client.publish(CLOCK_CONTROL_TOPIC, control.model_dump_json(), qos=1)
        ack: ClockAck = wait_until(lambda: self.clock_acks.get(control.id), timeout=timeout)
        return ack

    def drill(self, device: str, action: OfflineAction) -> ControlAck:
        control = Control(id=new_id(), devices=[device], do=action)
        self.client.publish(CONTROL_TOPIC, control.model_dump_json(), qos=1)
        ack: ControlAck = wait_until(lambda: self.drill_acks.get(control.id), timeout=30)
        return ack

    # -- what the devices published -----------------------------------------------------------
    def messages(self) -> list[tuple[str, dict[str, Any] | None]]:
        with self.lock:
            return list(self.log)

    def rows(self) -> list[Row]:
        """Every envelope (events and telemetry: both count in `seq`), by device and seq."""
        out = [
            (p["device_id"], p["seq"], p["type"], datetime.fromisoformat(p["ts"]), p["data"])
            for topic, p in self.messages()
            if p is not None and not topic.endswith("/state")
        ]
        return sorted(out, key=lambda r: (r[0], r[1]))

    def events(self, type_: str | None = None) -> list[Row]:
        return [r for r in self.rows() if r[2] != "telemetry" and (type_ is None or r[2] == type_)]

    def wait_past(self, at: datetime, devices: list[str], timeout: float = 120) -> None:
        """Until every device has published something after `at`: each device's messages come
        in order on its one connection, so everything it published up to `at` is in."""

        def done() -> bool:
            latest: dict[str, datetime] = {}
            for device, _seq, _type, ts, _data in self.rows():
                latest[device] = max(ts, latest.get(device, ts))
            return all(latest.get(d, at) > at for d in devices)

        wait_until(done, timeout=timeout)


@pytest.fixture
def street(broker: BrokerProcess, creds: Credentials) -> Iterator[Street]:
    watcher = Street(broker.port, creds)
    yield watcher
    watcher.close()


def simulate(broker: BrokerProcess, creds_dir: Path, log: Path, *args: str) -> Simulator:
    return Simulator(broker.port, creds_dir, log, "--seed", "11", *args)


def only(devices: list[str]) -> list[str]:
    return [arg for d in devices for arg in ("--only", d)]


def test_the_clock_is_announced_and_cleared_by_sigterm_and_by_the_will(
    broker: BrokerProcess, creds_dir: Path, street: Street, tmp_path: Path
) -> None:
    start = DAY.replace(hour=8)
    args = ("--speed", "60", "--start", start.isoformat(), *only(GATES[:2]))
    for how in ("sigterm", "sigkill"):
        sim = simulate(broker, creds_dir, tmp_path / f"{how}.log", *args)
        try:
            state = street.wait_state()
            assert (state.speed, state.seed, state.start, state.paused) == (60, 11, start, False)
            assert state.jumping_to is None and state.street >= start
            assert start <= street.now() < start + timedelta(hours=1)
            if how == "sigterm":
                sim.stop()  # a clean shutdown clears the announcement itself
            else:
                sim.proc.kill()  # the broker publishes the Last Will: empty, retained
                sim.proc.wait()
            # An empty retained payload: the broker dropped the retained announcement.
            wait_until(lambda: street.state() is None, timeout=30)
        finally:
            sim.stop()


def test_pause_resume_speed_and_refusals(
    broker: BrokerProcess, creds_dir: Path, street: Street, tmp_path: Path
) -> None:
    start = DAY.replace(hour=8)
    sim = simulate(broker, creds_dir, tmp_path / "sim.log", "--speed", "60",
                   "--start", start.isoformat(), *only(GATES))  # fmt: skip
    try:
        street.wait_state()
        street.wait_street(start + timedelta(minutes=1))
        paused = street.control(ClockAction(action="pause"))
        assert paused.ok and paused.clock.paused, paused
        at = paused.clock.street
        wait_until(lambda: (s := street.state()) and s.paused and s.seq >= paused.clock.seq)
        # Refused, with the reason: pausing twice, jumping backwards.
        again = street.control(ClockAction(action="pause"))
        assert not again.ok and again.reason is not None and "already paused" in again.reason
        back = street.control(ClockAction(action="jump", to=at - timedelta(minutes=5)))
        assert not back.ok and back.reason is not None and "forward only" in back.reason
        # Paused: nothing after the paused instant is published, by any device. The window
        # (2 wall seconds, 2 street minutes at 60x) is a polling deadline, not a threshold.
        before = len(street.events())
        deadline = time.monotonic() + 2
        wait_until(lambda: time.monotonic() > deadline, timeout=5)
        while_paused = street.events()
        assert all(r[3] <= at for r in while_paused), "published while paused"
        assert street.now() == at
        resumed = street.control(ClockAction(action="resume"))
        assert resumed.ok and not resumed.clock.paused and resumed.clock.street == at
        # The street runs on: events after the paused instant, from the devices.
        wait_until(lambda: any(r[3] > at for r in street.events()), timeout=30)
        assert len(street.events()) > before
        # A speed change is announced.
        faster = street.control(ClockAction(action="speed", speed=120))
        assert faster.ok and faster.clock.speed == 120
        wait_until(lambda: (s := street.state()) and s.speed == 120)
        # At max, pause is refused with its reason; a speed is still accepted.
        assert street.control(ClockAction(action="speed", speed="max")).ok
        wait_until(lambda: (s := street.state()) and s.max_speed)
        refused = street.control(ClockAction(action="pause"))
        assert not refused.ok and refused.reason is not None and "'max'" in refused.reason
        # At max the announcements keep coming (the street's progress).
        seq = street.wait_state().seq
        wait_until(lambda: street.wait_state().seq > seq + 1, timeout=10)
    finally:
        sim.stop()


def test_same_controls_at_other_moments_give_the_same_street(
    broker: BrokerProcess, creds_dir: Path, creds: Credentials, tmp_path: Path
) -> None:
    start = DAY.replace(hour=7)
    target = start + timedelta(hours=1)
    window_end = target + timedelta(minutes=6)

    def run(name: str, slow: bool) -> tuple[list[Row], datetime]:
        street = Street(broker.port, creds)
        sim = simulate(broker, creds_dir, tmp_path / f"{name}.log", "--speed", "60",
                       "--start", start.isoformat(), *only(GATES[:3]))  # fmt: skip
        try:
            street.wait_state()
            street.wait_street(start + timedelta(minutes=3 if slow else 1))
            assert street.control(ClockAction(action="pause")).ok
            if slow:  # paused for a while (a polling deadline, not a threshold)
                deadline = time.monotonic() + 1.5
                wait_until(lambda: time.monotonic() > deadline, timeout=5)
            assert street.control(ClockAction(action="resume")).ok
            if slow:
                street.wait_street(street.now() + timedelta(minutes=3))
            assert street.control(ClockAction(action="speed", speed=120)).ok
            if slow:
                street.wait_street(street.now() + timedelta(minutes=4))
            jump = street.control(ClockAction(action="jump", to=target))
            assert jump.ok and jump.clock.jumping_to == target, jump
            asked = jump.clock.street
            wait_until(lambda: (s := street.state()) and s.jumping_to is None and s.speed == 120)
            street.wait_past(window_end, GATES[:3])
            return street.rows(), asked
        finally:
            sim.stop()
            street.close()

    fast_rows, fast_asked = run("fast", slow=False)
    slow_rows, slow_asked = run("slow", slow=True)
    assert fast_asked < slow_asked  # the controls did come at other moments of the street
    for rows, asked in ((fast_rows, fast_asked), (slow_rows, slow_asked)):
        # The jump skipped exactly [asked, target): nothing from that span was published.
        assert not [r for r in rows if asked <= r[3] < target]
    # Before the first jump was asked: identical, seq included.
    prefix = [[r for r in rows if r[3] < fast_asked] for rows in (fast_rows, slow_rows)]
    assert prefix[0] == prefix[1] and len(prefix[0]) > 10
    # From the target on: identical, seq included. The skipped span's emissions used their
    # sequence numbers without being published, and each device that skipped some began a new
    # boot, so those numbers are no gap (loss is counted per boot, backend/quality.py).
    after = [[r for r in rows if target <= r[3] <= window_end] for rows in (fast_rows, slow_rows)]
    assert after[0] == after[1] and len(after[0]) > 20


def test_a_jump_to_the_morning_rush_brings_its_arrival_rate(
    broker: BrokerProcess, creds_dir: Path, street: Street, tmp_path: Path
) -> None:
    start = DAY.replace(hour=3)
    sim = simulate(broker, creds_dir, tmp_path / "sim.log", "--speed", "120",
                   "--start", start.isoformat(), *only(GATES))  # fmt: skip
    try:
        street.wait_state()
        night_end = start + timedelta(minutes=10)
        street.wait_street(night_end + timedelta(minutes=1))
        jump = street.control(ClockAction(action="jump", at=datetime(2026, 1, 1, 7, 30).time()))
        rush = DAY.replace(hour=7, minute=30)
        assert jump.ok and jump.clock.jumping_to == rush, jump
        rush_end = rush + timedelta(minutes=10)
        street.wait_past(rush_end, GATES)
    finally:
        sim.stop()
    granted = [r[3] for r in street.events("entry-granted")]
    night = sum(start <= ts < night_end for ts in granted)
    morning = sum(rush <= ts < rush_end for ts in granted)
    # devices/daily.py's gate curve: 0.05 at 03:00, 2.6 at 07:00 (52x); the seeded street here
    # gives about 9 and 400 arrivals over these ten minutes. At least 20 a minute, 10x the night.
    assert morning >= 200 and morning >= 10 * max(night, 1), (night, morning)


def test_at_max_a_device_offline_does_not_stop_the_others(
    broker: BrokerProcess, creds_dir: Path, street: Street, tmp_path: Path
) -> None:
    """Its outage lasts street seconds: the street runs on without it, and it comes back."""
    start = DAY.replace(hour=8)
    away = "gate-north"
    sim = simulate(broker, creds_dir, tmp_path / "sim.log", "--speed", "max",
                   "--start", start.isoformat(), *only(GATES))  # fmt: skip
    try:
        street.wait_state()
        ack = street.drill(away, OfflineAction(mode="abrupt", for_s=600))
        assert ack.applied == [away], ack
        mine = f"lijia/gate/{away}/state"

        def outage() -> tuple[int, int] | None:
            log = street.messages()
            gone = [
                i for i, (t, p) in enumerate(log) if t == mine and p and p["status"] == "offline"
            ]
            if not gone:
                return None
            back = [i for i, (t, p) in enumerate(log[gone[0]:]) if t == mine and p
                    and p["status"] == "online"]  # fmt: skip
            return (gone[0], gone[0] + back[0]) if back else None

        # Back within a polling deadline: at max, 600 street seconds go by in much less.
        gone, back = wait_until(outage, timeout=60)
        log = street.messages()
        others = [p for t, p in log[gone + 1 : back] if p and t.endswith("/events")
                  and p["device_id"] != away]  # fmt: skip
        assert others, "the other devices stopped while one was away"
        # What it published while away reaches the broker once it is back (its own queue).
        wait_until(
            lambda: any(
                t.endswith("/events") and p and p["device_id"] == away
                for t, p in street.messages()[back:]
            ),
            timeout=30,
        )
    finally:
        sim.stop()
