"""A face-recognition gate: residents pass by face in about 3 s, visitors by QR, with faults."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import gate as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.daily import CHINA as CHINA  # re-exported: tests compute Chongqing hours with it
from devices.kinds import register

CAMERA_FAULTS = ("no-signal", "lens-obscured", "overheating", "firmware-crash")
DOOR_ALERT = timedelta(seconds=30)  # a gate door open this long without anyone passing


@register
class GateBehaviour(Behaviour):
    """Rates: arrivals_per_hour, telemetry_every_s, camera_faults_per_day, camera_repair_min."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        self.people_in = 0
        self.people_out = 0
        self.lockdown = False
        self.door = "closed"
        self.entry_ms_total = 0
        self.entries = 0
        self.arrivals = daily.Arrivals(
            self.rng, self.rate("arrivals_per_hour", 120), daily.GATE, now
        )
        self.camera_ok = True
        self.camera_down_since = now
        self.next_camera = now + self._camera_gap()
        self.next_telemetry = now
        # A jammed door (a drill's fault) is reported once it has stood open for DOOR_ALERT.
        self.door_jammed_at = now
        self.door_alert_at = now + daily.NEVER

    @property
    def next_arrival(self) -> datetime:
        return self.arrivals.due

    def _camera_gap(self) -> timedelta:
        if self.camera_ok:
            return daily.gap(self.rng, self.rate("camera_faults_per_day", 0.3) / 24)
        # A technician (or a self-reboot) brings it back; never instantly.
        repair_min = self.rate("camera_repair_min", 40)
        return timedelta(minutes=1) + daily.gap(self.rng, 60 / max(repair_min, 1))

    def next_wakeup(self) -> datetime:
        return min(self.arrivals.due, self.next_camera, self.next_telemetry, self.door_alert_at)

    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        if now >= self.next_camera:
            out.append(self._camera(now))
        if now >= self.door_alert_at:
            self.door_alert_at = now + daily.NEVER
            held = int((now - self.door_jammed_at).total_seconds())
            out.append(Emission(Channel.EVENTS, "door-held-open", contract.DoorHeldOpen(
                seconds=max(1, held))))  # fmt: skip
        if now >= self.arrivals.due and self.arrivals.fire(now):
            out.extend(self._arrival(now))
        if self.telemetry_due(now, 30):
            out.append(self._telemetry())
        return out

    def _telemetry(self) -> Emission:
        avg = self.entry_ms_total // self.entries if self.entries else 0
        data = contract.GateTelemetry(
            door="locked" if self.lockdown else self.door,
            people_in=self.people_in,
            people_out=self.people_out,
            avg_entry_ms=avg,
            lockdown=self.lockdown,
            camera="ok" if self.camera_ok else "fault",
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def _camera(self, now: datetime) -> Emission:
        if self.camera_ok:
            self.camera_ok = False
            self.camera_down_since = now
            self.next_camera = now + self._camera_gap()
            fault = contract.CameraFault(reason=self.rng.choice(CAMERA_FAULTS))
            return Emission(Channel.EVENTS, "camera-fault", fault)
        self.camera_ok = True
        self.next_camera = now + self._camera_gap()
        down_s = int((now - self.camera_down_since).total_seconds())
        return Emission(Channel.EVENTS, "camera-recovered", contract.CameraRecovered(down_s=down_s))

    def _direction(self, now: datetime) -> str:
        hour = daily.local(now).hour
        p_out = 0.8 if 6 <= hour < 10 else 0.25 if 16 <= hour < 21 else 0.5
        return "out" if self.rng.random() < p_out else "in"

    def _arrival(self, now: datetime) -> list[Emission]:
        rng = self.rng
        direction = self._direction(now)
        roll = rng.random()
        method = (
            "face" if roll < 0.82 else "card" if roll < 0.88 else "pin" if roll < 0.91 else "qr"
        )
        if method == "face" and not self.camera_ok:
            # The non-face way in: residents who would have shown their face use card or PIN.
            method = "card" if rng.random() < 0.7 else "pin"
        resident = None if method == "qr" else self.population.pick(rng)
        if self.lockdown:
            denied = contract.EntryDenied(method=method, reason="lockdown", resident=resident)
            return [Emission(Channel.EVENTS, "entry-denied", denied)]
        score = None
        if method == "face":
            if rng.random() < 0.02:
                denied = contract.EntryDenied(
                    method="face", reason="unknown-face", score=round(rng.uniform(0.2, 0.6), 2)
                )
                return [Emission(Channel.EVENTS, "entry-denied", denied)]
            score = round(min(0.99, rng.gauss(0.93, 0.03)), 2)
            if score < 0.8:
                denied = contract.EntryDenied(
                    method="face", reason="low-confidence", resident=resident, score=score
                )
                return [Emission(Channel.EVENTS, "entry-denied", denied)]
        # Entry takes about 3 s by face (the street's promise); card is quicker, QR/PIN slower.
        median_ms = {"face": 2300, "card": 1800, "pin": 4500, "qr": 4000}[method]
        duration = int(min(60_000, median_ms * math.exp(rng.gauss(0, 0.2))))
        granted = contract.EntryGranted(
            method=method,
            direction=direction,
            resident=resident,
            score=score,
            duration_ms=duration,
        )
        self._count(direction, duration)
        out = [Emission(Channel.EVENTS, "entry-granted", granted)]
        if rng.random() < 0.01:
            out.append(Emission(Channel.EVENTS, "tailgating", contract.Tailgating(extra_people=1)))
            self._count(direction, 0, people=1)
        if rng.random() < 0.005:
            held = contract.DoorHeldOpen(seconds=rng.randint(30, 180))
            out.append(Emission(Channel.EVENTS, "door-held-open", held))
        return out

    def journey_step(self, resident: str, correlation_id: str, now: datetime) -> list[Emission]:
        """A known resident comes home through this gate: face (card or PIN if the camera is
        down), counted like any other entry; a lockdown turns them away."""
        rng = self.rng
        if not self.camera_ok:
            method = "card" if rng.random() < 0.7 else "pin"
        else:
            method = "face" if rng.random() < 0.9 else "card"
        if self.lockdown:
            denied = contract.EntryDenied(method=method, reason="lockdown", resident=resident)
            return [Emission(Channel.EVENTS, "entry-denied", denied, correlation_id)]
        score = round(min(0.99, max(0.8, rng.gauss(0.93, 0.03))), 2) if method == "face" else None
        median_ms = {"face": 2300, "card": 1800, "pin": 4500}[method]
        duration = int(min(60_000, median_ms * math.exp(rng.gauss(0, 0.2))))
        granted = contract.EntryGranted(
            method=method, direction="in", resident=resident, score=score, duration_ms=duration
        )
        self._count("in", duration)
        return [Emission(Channel.EVENTS, "entry-granted", granted, correlation_id)]

    def _count(self, direction: str, duration_ms: int, people: int = 1) -> None:
        if direction == "in":
            self.people_in += people
        else:
            self.people_out += people
        if duration_ms:
            self.entries += 1
            self.entry_ms_total += duration_ms

    def fault(
        self, fault: str, on: bool, now: datetime, drift_per_min: float = 0.0
    ) -> list[Emission]:
        if fault == "camera-failure":
            already = on == (not self.camera_ok)
            if already and not on:
                return []  # working: nothing to repair
            # A failure of its own already under way is not reported again, but from now on
            # the drill decides when it ends, not the repair schedule.
            out = [] if already else [self._camera(now)]
            self.next_camera = now + (daily.NEVER if on else self._camera_gap())
            return out
        if fault == "door-jam":
            if on:
                self.door, self.door_jammed_at = "open", now
                self.door_alert_at = now + DOOR_ALERT
            else:
                self.door, self.door_alert_at = "closed", now + daily.NEVER
            return [self._telemetry()]
        return super().fault(fault, on, now, drift_per_min)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        if command.name == "open-once":
            if self.lockdown:
                return Outcome.rejected("gate is locked down")
            granted = contract.EntryGranted(method="remote", direction="in", duration_ms=0)
            self._count("in", 0)
            return Outcome.done((Emission(Channel.EVENTS, "entry-granted", granted),))
        if command.name == "lock-down":
            self.lockdown = True
            return Outcome.done((self._telemetry(),))
        if command.name == "release":
            if not self.lockdown:
                return Outcome.rejected("gate is not locked down")
            self.lockdown = False
            return Outcome.done((self._telemetry(),))
        return Outcome.rejected(f"unsupported command {command.name}")
