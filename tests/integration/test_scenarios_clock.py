"""The scenario CLI on the street's clock: `python -m scenarios inject` stamps an injected event
with street time, read from the simulator's retained clock announcement (contracts/clock.py),
and with wall time when no simulator announces one. Against a real Mosquitto with
broker_config/ (its ACL lets the backend user read the announcements)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from adapters.credentials import BACKEND_USER, Credentials
from adapters.mqtt import make_client
from contracts.clock import ClockState, clock_topic
from contracts.envelope import Envelope
from contracts.simulation import SIMULATOR_USER
from stack.broker import BrokerProcess
from stack.processes import ROOT, wait_until

EVENTS = "lijia/gate/gate-east/events"


def session(port: int, user: str, password: str) -> mqtt.Client:
    client = make_client(f"test-{user}-{os.getpid()}-{threading.get_ident()}", user, password)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    wait_until(client.is_connected, timeout=10)
    return client


def announce(port: int, creds: Credentials, payload: bytes) -> None:
    """Publish (or clear, with b"") a retained clock announcement as the simulator."""
    assert creds.simulator_password
    sim = session(port, SIMULATOR_USER, creds.simulator_password)
    try:
        info = sim.publish(clock_topic("sim-clock-test"), payload, qos=1, retain=True)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        sim.disconnect()
        sim.loop_stop()


class EventsSeen:
    """The gate's events, as the backend user receives them."""

    def __init__(self, port: int, creds: Credentials) -> None:
        self.envelopes: list[Envelope] = []
        subscribed = threading.Event()
        self.client = session(port, BACKEND_USER, creds.backend_password)
        self.client.on_message = lambda _c, _u, msg: self.envelopes.append(
            Envelope.model_validate_json(msg.payload)
        )
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe(EVENTS, qos=1)
        wait_until(subscribed.is_set, timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def inject(broker: BrokerProcess, creds_dir: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scenarios",
            "inject",
            "--device",
            "gate-east",
            "--type",
            "tailgating",
            "--data",
            '{"extra_people": 1}',
            "--mqtt-port",
            str(broker.port),
            "--credentials-dir",
            str(creds_dir),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sent: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return sent


@pytest.mark.integration
def test_a_cli_injection_is_stamped_with_the_streets_time_at_60x(
    broker: BrokerProcess, creds_dir: Path, creds: Credentials
) -> None:
    wall = datetime.now(UTC)
    clock = ClockState(
        simulator="sim-clock-test",
        seq=3,
        wall=wall,
        street=wall + timedelta(hours=9, minutes=17),  # hours away from the wall clock
        speed=60.0,
        seed=7,
        start=wall + timedelta(hours=9),
    )
    announce(broker.port, creds, clock.model_dump_json().encode())
    seen = EventsSeen(broker.port, creds)
    try:
        before = datetime.now(UTC)
        sent = inject(broker, creds_dir)
        after = datetime.now(UTC)
        (env,) = wait_until(lambda: list(seen.envelopes), timeout=10)
    finally:
        seen.close()
    assert env.event_id == sent["event_id"] and env.injected and env.type == "tailgating"
    # The street's time at the moment of injection, by the announced mapping: between the
    # street's time before the CLI started and after it ended (60 street seconds a second).
    assert clock.street_at(before) <= env.ts <= clock.street_at(after), (before, env.ts, after)
    assert env.ts - after > timedelta(hours=9)
    assert datetime.fromisoformat(sent["ts"]) == env.ts


@pytest.mark.integration
def test_without_a_clock_announcement_a_cli_injection_is_stamped_with_wall_time(
    broker: BrokerProcess, creds_dir: Path, creds: Credentials
) -> None:
    """An announcement cleared by the simulator's Last Will (an empty retained payload)."""
    wall = datetime.now(UTC)
    gone = ClockState(
        simulator="sim-clock-test",
        seq=1,
        wall=wall,
        street=wall + timedelta(hours=3),
        speed=60.0,
        seed=7,
        start=wall,
    )
    announce(broker.port, creds, gone.model_dump_json().encode())
    announce(broker.port, creds, b"")
    seen = EventsSeen(broker.port, creds)
    try:
        before = datetime.now(UTC)
        sent = inject(broker, creds_dir)
        after = datetime.now(UTC)
        (env,) = wait_until(lambda: list(seen.envelopes), timeout=10)
    finally:
        seen.close()
    assert env.event_id == sent["event_id"]
    assert before <= env.ts <= after
