"""A smart school gate: on school days arrivals 07:30-08:15, pick-ups 16:30-17:30, visitors."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import school as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

ARRIVE, VISIT, DEPART = 0, 1, 2
PURPOSES = ("parent-meeting", "delivery", "maintenance", "inspection", "other")
PURPOSE_WEIGHTS = (0.35, 0.3, 0.15, 0.05, 0.15)
HELD_SPACING = timedelta(seconds=2)  # pupils held by a lockdown go through one by one


@register
class SchoolBehaviour(Behaviour):
    """Rates: students, attendance, guardian_pickup_share, visitors_per_day, telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        # The same pupils whatever day the street starts on: not from the day's stream.
        rng = self.population.lasting_rng(f"school:{self.spec.id}")
        enrolled = max(1, min(int(self.rate("students", 600)), self.population.size // 2))
        # Each pupil is a distinct pseudonym with one registered guardian (siblings may share).
        roster: dict[str, None] = {}
        while len(roster) < enrolled:
            roster[self.population.pick(rng)] = None
        self.students = list(roster)
        self.guardians = [self.population.pick(rng) for _ in self.students]
        self.inside = [False] * enrolled
        self.present = 0
        self.arrived_today = 0
        self.departed_today = 0
        self.day = daily.local_date(now)
        self.pickups_planned = False
        self.lockdown = False
        self.open_until = now
        # Today's timetable, sorted: (instant, ARRIVE | VISIT | DEPART, pupil index).
        self.plan: list[tuple[datetime, int, int]] = []
        self.next_step = 0
        self.next_midnight = daily.next_local(now, time(0, 0))
        self.next_morning = daily.next_local(now, daily.SCHOOL_ARRIVALS.start)
        self.next_afternoon = daily.next_local(now, daily.SCHOOL_PICKUPS.start)
        self.next_telemetry = now
        self._catch_up(now)

    def _catch_up(self, now: datetime) -> None:
        """Starting during a school day: pupils who came before the start are already inside."""
        window_start = daily.next_local(now, daily.SCHOOL_ARRIVALS.start) - timedelta(days=1)
        if daily.day_off(now) or now >= daily.next_local(window_start, daily.SCHOOL_DAY.end):
            return
        self._morning(window_start)
        while self.next_step < len(self.plan) and self.plan[self.next_step][0] < now:
            _, action, i = self.plan[self.next_step]
            self.next_step += 1
            if action == ARRIVE:
                self.inside[i] = True
                self.present += 1
                self.arrived_today += 1

    def next_wakeup(self) -> datetime:
        soonest = min(
            self.next_midnight, self.next_morning, self.next_afternoon, self.next_telemetry
        )
        if not self.lockdown and self.next_step < len(self.plan):
            soonest = min(soonest, self.plan[self.next_step][0])
        return soonest

    # -- the timetable -------------------------------------------------------------------------
    def _schedule(self, entries: list[tuple[datetime, int, int]]) -> None:
        self.plan = sorted(self.plan[self.next_step :] + entries)
        self.next_step = 0

    def _morning(self, now: datetime) -> None:
        rng = self.rng
        window = daily.SCHOOL_ARRIVALS.seconds()
        entries: list[tuple[datetime, int, int]] = []
        attendance = self.rate("attendance", 0.97)
        for i in range(len(self.students)):
            if rng.random() < attendance:
                # Most pupils come in the middle of the window, hardly anyone at the last minute.
                at = rng.triangular(0, window - 1, window * 0.45)
                entries.append((now + timedelta(seconds=at), ARRIVE, i))
        day_start = now + timedelta(seconds=window)
        day_length = daily.SCHOOL_DAY.seconds()
        per_s = self.rate("visitors_per_day", 6) / day_length
        t = rng.expovariate(per_s) if per_s > 0 else day_length
        while t < day_length:
            entries.append((day_start + timedelta(seconds=t), VISIT, -1))
            t += rng.expovariate(per_s)
        self._schedule(entries)

    def _afternoon(self, now: datetime) -> None:
        rng = self.rng
        window = daily.SCHOOL_PICKUPS.seconds()
        entries = [
            (now + timedelta(seconds=rng.triangular(0, window - 1, window * 0.2)), DEPART, i)
            for i, inside in enumerate(self.inside)
            if inside
        ]
        self._schedule(entries)
        self.pickups_planned = True

    def _correlation(self, day: date, i: int) -> str:
        # A pupil's arrival and departure on one day share this id.
        return f"{self.spec.id[:40]}:{day:%Y%m%d}-{i}"

    def _step(self, when: datetime, action: int, i: int) -> Emission:
        rng = self.rng
        if action == VISIT:
            purpose = rng.choices(PURPOSES, PURPOSE_WEIGHTS)[0]
            resident = self.population.pick(rng) if purpose == "parent-meeting" else None
            # Parents and couriers are often pre-registered in the app and show a QR code.
            by_qr = purpose in ("parent-meeting", "delivery") and rng.random() < 0.6
            method = "qr" if by_qr else "id-card"
            visitor = contract.VisitorRegistered(purpose=purpose, method=method, resident=resident)
            return Emission(Channel.EVENTS, "visitor-registered", visitor)
        correlation = self._correlation(daily.local_date(when), i)
        student = self.students[i]
        if action == ARRIVE:
            self.inside[i] = True
            self.present += 1
            self.arrived_today += 1
            if self.pickups_planned:
                # Held outside by a lockdown past pick-up time: in, then straight home.
                late = when + timedelta(minutes=rng.uniform(5, 20))
                self._schedule([(late, DEPART, i)])
            arrived = contract.StudentArrived(student=student)
            return Emission(Channel.EVENTS, "student-arrived", arrived, correlation)
        self.inside[i] = False
        self.present -= 1
        self.departed_today += 1
        if rng.random() < self.rate("guardian_pickup_share", 0.75):
            picked = contract.PickedUp(student=student, guardian=self.guardians[i])
            return Emission(Channel.EVENTS, "picked-up", picked, correlation)
        left = contract.StudentDeparted(student=student)
        return Emission(Channel.EVENTS, "student-departed", left, correlation)

    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        if now >= self.next_midnight:
            self.next_midnight = daily.next_local(now, time(0, 0))
            self.arrived_today = self.departed_today = 0
            self.pickups_planned = False
        school_day = not daily.day_off(now)
        if now >= self.next_morning:
            self.next_morning = daily.next_local(now, daily.SCHOOL_ARRIVALS.start)
            if school_day:
                self._morning(now)
        if now >= self.next_afternoon:
            self.next_afternoon = daily.next_local(now, daily.SCHOOL_PICKUPS.start)
            if school_day:
                self._afternoon(now)
        while (
            not self.lockdown
            and self.next_step < len(self.plan)
            and self.plan[self.next_step][0] <= now
        ):
            when, action, i = self.plan[self.next_step]
            self.next_step += 1
            out.append(self._step(when, action, i))
        if self.next_step >= len(self.plan):
            self.plan, self.next_step = [], 0
        if self.telemetry_due(now, 60):
            out.append(self._telemetry(now))
        return out

    def _gate(self, now: datetime) -> str:
        if self.lockdown:
            return "locked"
        if now < self.open_until:
            return "open"
        in_window = daily.SCHOOL_ARRIVALS.contains(now) or daily.SCHOOL_PICKUPS.contains(now)
        return "open" if in_window and not daily.day_off(now) else "closed"

    def _telemetry(self, now: datetime) -> Emission:
        data = contract.SchoolTelemetry(
            present=self.present,
            arrived_today=self.arrived_today,
            departed_today=self.departed_today,
            enrolled=len(self.students),
            gate=self._gate(now),
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        if isinstance(params, contract.OpenGate):
            if self.lockdown:
                return Outcome.rejected("school is locked down")
            self.open_until = max(self.open_until, now + timedelta(minutes=params.minutes))
        elif isinstance(params, contract.LockDown):
            if self.lockdown:
                return Outcome.rejected("school is already locked down")
            self.lockdown = True
        elif isinstance(params, contract.Release):
            if not self.lockdown:
                return Outcome.rejected("school is not locked down")
            self.lockdown = False
            # Whoever was held at the gate goes through now, one by one, in their order.
            held = [e for e in self.plan[self.next_step :] if e[0] <= now]
            later = self.plan[self.next_step + len(held) :]
            retimed = [(now + HELD_SPACING * (k + 1), a, i) for k, (_, a, i) in enumerate(held)]
            self.plan, self.next_step = sorted(retimed + later), 0
        else:
            return Outcome.rejected(f"unsupported command {command.name}")
        return Outcome.done((self._telemetry(now),))
