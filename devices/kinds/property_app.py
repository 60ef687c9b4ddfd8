"""The property app: requests are created, dispatched to staff, resolved, rated or escalated."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import property_app as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

CATEGORIES = tuple(daily.PROPERTY)
# The service promise per category, and the typical work once someone is on it (minutes).
SLA = {"repair": timedelta(hours=24), "cleaning": timedelta(hours=8),
       "noise": timedelta(hours=2), "security": timedelta(hours=1),
       "parking": timedelta(hours=4)}  # fmt: skip
WORK_MIN = {"repair": 150.0, "cleaning": 50.0, "noise": 25.0, "security": 20.0, "parking": 35.0}
OFFICE = daily.Window(time(8, 0), time(20, 0))  # outside these hours only the duty team works
RATINGS = (5, 4, 3, 2, 1)
ON_TIME_RATINGS = (0.55, 0.3, 0.1, 0.03, 0.02)
LATE_RATINGS = (0.1, 0.2, 0.3, 0.2, 0.2)
KEEP_RESOLVED = 200  # so a late command on a closed request gets a clear answer
ASSIGN, RESOLVE, RATE, DUE = 0, 1, 2, 3


@dataclass
class Request:
    request_id: str
    category: str
    created: datetime
    due: datetime
    status: str = "created"  # -> "assigned" -> "resolved"
    staff: str | None = None
    level: int = 0
    work: int = 0  # bumped on each (re)assignment, so a stale "work done" timer is ignored
    # What its events carry: the request id, or the linked journey's id that filed it.
    correlation: str = ""


@register
class PropertyAppBehaviour(Behaviour):
    """Rates: requests_per_hour, staff, dispatch_min, work_scale, rating_share,
    telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        self.requests: dict[str, Request] = {}
        self.resolved: deque[str] = deque()
        self.durations: deque[int] = deque(maxlen=50)
        self.timers: list[tuple[datetime, int, int, str, int]] = []
        self.timer_seq = 0
        self.day = daily.local_date(now)
        self.number = 0
        self.staff = max(1, min(9999, int(self.rate("staff", 6))))
        self.arrivals = daily.Arrivals(
            self.rng, self.rate("requests_per_hour", 1.5), daily.PROPERTY_ALL, now
        )
        self.next_telemetry = now

    def next_wakeup(self) -> datetime:
        soonest = min(self.arrivals.due, self.next_telemetry)
        return min(soonest, self.timers[0][0]) if self.timers else soonest

    def _at(self, when: datetime, action: int, request_id: str, work: int = 0) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (when, self.timer_seq, action, request_id, work))

    def _open(self) -> list[Request]:
        return [r for r in self.requests.values() if r.status != "resolved"]

    # -- a request's life ----------------------------------------------------------------------
    def _create(
        self, now: datetime, resident: str | None = None, correlation: str | None = None
    ) -> Emission:
        rng = self.rng
        today = daily.local_date(now)
        if today != self.day:
            self.day, self.number = today, 0
        self.number += 1
        category = rng.choices(CATEGORIES, daily.property_mix(now))[0]
        request_id = f"{self.spec.id[:40]}-{today:%Y%m%d}-{self.number:04d}"
        request = Request(request_id, category, now, now + SLA[category])
        request.correlation = correlation or request_id
        self.requests[request_id] = request
        # The dispatcher picks it up quickly in office hours; the night duty team takes longer.
        dispatch_min = max(self.rate("dispatch_min", 15), 1.0)
        if not OFFICE.contains(now) and category not in ("security", "noise"):
            dispatch_min *= 4
        self._at(now + timedelta(minutes=1 + rng.expovariate(1 / dispatch_min)), ASSIGN,
                 request_id)  # fmt: skip
        self._at(request.due, DUE, request_id)
        created = contract.RequestCreated(
            request_id=request_id, category=category,
            resident=resident or self.population.pick(rng), due=request.due,
        )  # fmt: skip
        return Emission(Channel.EVENTS, "request-created", created, request.correlation)

    def journey_step(self, resident: str, correlation_id: str, now: datetime) -> list[Emission]:
        """Home again, the resident files a request (the usual mix for the hour); the request's
        whole life (assigned, resolved, rated, escalated) carries the journey's id."""
        return [self._create(now, resident, correlation_id)]

    def _assign(self, request: Request, staff: str, by: str, now: datetime) -> Emission:
        request.status, request.staff = "assigned", staff
        request.work += 1
        # Escalated requests get the senior team's attention: the work goes faster.
        minutes = WORK_MIN[request.category] * self.rate("work_scale", 1) / (1 + request.level)
        self._at(now + timedelta(minutes=5 + self.rng.expovariate(1 / max(minutes, 1))),
                 RESOLVE, request.request_id, request.work)  # fmt: skip
        data = contract.RequestAssigned(request_id=request.request_id, staff=staff, by=by)
        return Emission(Channel.EVENTS, "request-assigned", data, request.correlation)

    def _resolve(self, request: Request, by: str, now: datetime) -> Emission:
        request.status = "resolved"
        minutes = int((now - request.created).total_seconds() // 60)
        self.durations.append(minutes)
        self.resolved.append(request.request_id)
        while len(self.resolved) > KEEP_RESOLVED:
            self.requests.pop(self.resolved.popleft(), None)
        on_time = now <= request.due
        if self.rng.random() < self.rate("rating_share", 0.6):
            self._at(now + timedelta(minutes=self.rng.uniform(5, 240)), RATE,
                     request.request_id, 1 if on_time else 0)  # fmt: skip
        data = contract.RequestResolved(
            request_id=request.request_id, resolution_min=minutes, on_time=on_time, by=by
        )
        return Emission(Channel.EVENTS, "request-resolved", data, request.correlation)

    def _escalate(self, request: Request, reason: str) -> Emission:
        request.level += 1
        data = contract.RequestEscalated(
            request_id=request.request_id, level=request.level, reason=reason
        )
        return Emission(Channel.EVENTS, "request-escalated", data, request.correlation)

    def _timer(self, now: datetime) -> Emission | None:
        _, _, action, request_id, work = heapq.heappop(self.timers)
        request = self.requests.get(request_id)
        if action == RATE:  # the timer's last field says whether it was resolved on time
            weights = ON_TIME_RATINGS if work else LATE_RATINGS
            rated = contract.RequestRated(
                request_id=request_id, rating=self.rng.choices(RATINGS, weights)[0]
            )
            correlation = request.correlation if request is not None else request_id
            return Emission(Channel.EVENTS, "request-rated", rated, correlation)
        if request is None or request.status == "resolved":
            return None
        if action == ASSIGN and request.status == "created":
            return self._assign(request, f"staff-{self.rng.randint(1, self.staff):02d}",
                                "dispatcher", now)  # fmt: skip
        if action == RESOLVE and request.work == work:
            return self._resolve(request, "staff", now)
        if action == DUE and request.level < 3:
            return self._escalate(request, "overdue")
        return None

    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        while self.timers and self.timers[0][0] <= now:
            emission = self._timer(now)
            if emission is not None:
                out.append(emission)
        if now >= self.arrivals.due and self.arrivals.fire(now):
            out.append(self._create(now))
        if self.telemetry_due(now, 60):
            out.append(self._telemetry(now))
        return out

    def _telemetry(self, now: datetime) -> Emission:
        open_ = self._open()
        data = contract.PropertyAppTelemetry(
            open_requests=len(open_),
            overdue_requests=sum(r.due < now for r in open_),
            unassigned_requests=sum(r.status == "created" for r in open_),
            avg_resolution_min=sum(self.durations) // len(self.durations) if self.durations else 0,
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        if not isinstance(params, contract.Assign | contract.Resolve | contract.Escalate):
            return Outcome.rejected(f"unsupported command {command.name}")
        request = self.requests.get(params.request_id)
        if request is None:
            return Outcome.rejected(f"unknown request {params.request_id}")
        if request.status == "resolved":
            return Outcome.rejected(f"request {params.request_id} is already resolved")
        if isinstance(params, contract.Assign):
            if request.staff == params.staff:
                return Outcome.rejected(f"request {params.request_id} is already "
                               f"assigned to {params.staff}")  # fmt: skip
            done = self._assign(request, params.staff, "operator", now)
        elif isinstance(params, contract.Resolve):
            if request.status != "assigned":
                return Outcome.rejected(f"request {params.request_id} is not assigned yet")
            done = self._resolve(request, "operator", now)
        else:
            if request.level >= 3:
                return Outcome.rejected(f"request {params.request_id} is already at the "
                               "street office (level 3)")  # fmt: skip
            done = self._escalate(request, "operator")
        return Outcome.done((done, self._telemetry(now)))
