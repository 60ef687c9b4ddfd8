"""Builds the simulated fleet from a fleet file and credentials, and runs it on one loop."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from contracts.fleet import Fleet
from devices.clock import SimClock
from devices.kinds import behaviour_for
from devices.loop import MqttLoop
from devices.population import Population
from devices.session import BrokerAddress, DeviceSession, FleetStats
from stack.credentials import load as load_credentials

log = logging.getLogger(__name__)


def device_rng(seed: int, device_id: str) -> random.Random:
    # Per device, so one device's randomness never depends on how many others there are.
    return random.Random(f"{seed}:{device_id}")


class FleetRunner:
    def __init__(
        self,
        fleet: Fleet,
        credentials_dir: Path,
        broker: BrokerAddress,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        start: datetime | None = None,
        only: set[str] | None = None,
    ) -> None:
        self.fleet = fleet
        self.seed = fleet.seed if seed is None else seed
        self.loop = MqttLoop()
        self.clock = SimClock(start or datetime.now(UTC), speed)
        self.stats = FleetStats()
        creds = load_credentials(credentials_dir)
        population = Population(fleet.population, self.seed)
        self.sessions: list[DeviceSession] = []
        for spec in fleet.devices:
            if only and spec.id not in only:
                continue
            behaviour = behaviour_for(spec.kind)(spec, device_rng(self.seed, spec.id), population)
            self.sessions.append(
                DeviceSession(
                    behaviour, creds.devices[spec.id], self.loop, self.clock, broker, self.stats
                )
            )

    def start(self) -> None:
        for session in self.sessions:
            session.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Every device says goodbye on its state topic, then the loop drains."""
        for session in self.sessions:
            session.shutdown()
        deadline = time.monotonic() + timeout
        # Done when every socket is closed: paho closes it after DISCONNECT is written.
        self.loop.run(until=lambda: not self.loop.selector.get_map() or time.monotonic() > deadline)

    def run_forever(self, status_every: float = 10.0) -> None:
        stopping = threading.Event()

        def on_signal(_sig: int, _frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        last, published = time.monotonic(), 0
        while not stopping.is_set():
            self.loop.run_once()
            now = time.monotonic()
            if now - last >= status_every:
                rate = (self.stats.published - published) / (now - last)
                log.info(
                    "devices connected %d/%d, messages/s %.1f, errors %d",
                    self.stats.connected,
                    len(self.sessions),
                    rate,
                    self.stats.errors,
                )
                last, published = now, self.stats.published
        self.shutdown()
