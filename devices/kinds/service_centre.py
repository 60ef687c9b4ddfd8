"""A 24-hour service centre: a ticket queue served by open counters; kiosks fail and recover."""

from __future__ import annotations

from collections import deque
from datetime import date, datetime, timedelta
from itertools import accumulate

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import service_centre as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

# (service, ticket letter, share of counter visits): social security and residency dominate.
COUNTER_SERVICES: tuple[tuple[str, str, float], ...] = (
    ("social-security", "A", 0.3),
    ("household-registration", "B", 0.2),
    ("elderly-care", "C", 0.15),
    ("utilities", "D", 0.15),
    ("general", "E", 0.2),
)
# (service, share, shortest and longest seconds at the kiosk)
KIOSK_SERVICES: tuple[tuple[str, float, int, int], ...] = (
    ("bill-payment", 0.55, 45, 200),
    ("printing", 0.3, 30, 300),
    ("id-photo", 0.15, 120, 360),
)
_COUNTER_CUM = list(accumulate(share for _, _, share in COUNTER_SERVICES))
_KIOSK_CUM = list(accumulate(share for _, share, _, _ in KIOSK_SERVICES))
HARDWARE = ("paper-jam", "printer-offline", "card-reader")
SOFTWARE = ("network", "software-crash")  # a reboot clears these


class Kiosk:
    __slots__ = ("due", "ok", "reason", "since")

    def __init__(self, due: datetime) -> None:
        self.ok = True
        self.reason: str | None = None
        self.since = due
        self.due = due  # next fault if ok, technician's arrival if not


@register
class ServiceCentreBehaviour(Behaviour):
    """Rates: visitors_per_hour, self_service_share, counters, counters_open, service_min,
    max_queue, kiosks, kiosk_faults_per_day, kiosk_repair_min, telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        rng = self.rng
        n_counters = max(1, min(contract.MAX_COUNTERS, int(self.rate("counters", 4))))
        staffed = max(0, min(n_counters, int(self.rate("counters_open", 3))))
        self.open = [i < staffed for i in range(n_counters)]
        # When the visitor at each counter leaves; None while the counter is idle.
        self.free_at: list[datetime | None] = [None] * n_counters
        self.queue: deque[tuple[str, datetime, str]] = deque()
        self.waits: deque[int] = deque(maxlen=20)
        self.day = daily.local_date(now)
        self.numbers = {letter: 0 for _, letter, _ in COUNTER_SERVICES}
        n_kiosks = max(0, min(contract.MAX_KIOSKS, int(self.rate("kiosks", 3))))
        self.kiosks = [Kiosk(now) for _ in range(n_kiosks)]
        for kiosk in self.kiosks:
            kiosk.due = now + self._kiosk_gap(kiosk)
        self.visitors = daily.Arrivals(
            rng, self.rate("visitors_per_hour", 20), daily.SERVICE_CENTRE, now
        )
        self.next_telemetry = now

    def next_wakeup(self) -> datetime:
        soonest = min(self.visitors.due, self.next_telemetry)
        for free_at in self.free_at:
            if free_at is not None and free_at < soonest:
                soonest = free_at
        for kiosk in self.kiosks:
            soonest = min(soonest, kiosk.due)
        return soonest

    def _kiosk_gap(self, kiosk: Kiosk) -> timedelta:
        if kiosk.ok:
            return daily.gap(self.rng, self.rate("kiosk_faults_per_day", 0.3) / 24)
        repair_min = max(self.rate("kiosk_repair_min", 90), 1.0)
        return timedelta(minutes=10) + daily.gap(self.rng, 60 / repair_min)

    def _correlation(self, day: date, ticket: str) -> str:
        # Issued and served share this id, so a visitor's wait can be followed.
        return f"{self.spec.id[:40]}:{day:%Y%m%d}-{ticket}"

    # -- counters ------------------------------------------------------------------------------
    def _call(self, now: datetime) -> list[Emission]:
        """Call waiting tickets to every open, idle counter (lowest number first)."""
        out: list[Emission] = []
        service_min = max(self.rate("service_min", 5), 0.5)
        for i, is_open in enumerate(self.open):
            if not self.queue:
                break
            if not is_open or self.free_at[i] is not None:
                continue
            ticket, issued, correlation = self.queue.popleft()
            wait = int((now - issued).total_seconds())
            self.waits.append(wait)
            minutes = 1 + self.rng.expovariate(1 / service_min)
            self.free_at[i] = now + timedelta(minutes=min(minutes, 90))
            served = contract.TicketServed(ticket=ticket, counter=i + 1, wait_s=wait)
            out.append(Emission(Channel.EVENTS, "ticket-served", served, correlation))
        return out

    def _visit(self, now: datetime) -> list[Emission]:
        rng = self.rng
        working = [i for i, k in enumerate(self.kiosks) if k.ok]
        if working and rng.random() < self.rate("self_service_share", 0.45):
            service, _, lo, hi = rng.choices(KIOSK_SERVICES, cum_weights=_KIOSK_CUM)[0]
            done = contract.SelfServiceTransaction(
                kiosk=rng.choice(working) + 1, service=service, duration_s=rng.randint(lo, hi)
            )
            return [Emission(Channel.EVENTS, "self-service-transaction", done)]
        if len(self.queue) >= self.rate("max_queue", 30):
            return []  # the screen shows the queue; they come back another time
        today = daily.local_date(now)
        if today != self.day:
            self.day = today
            self.numbers = dict.fromkeys(self.numbers, 0)
        service, letter, _ = rng.choices(COUNTER_SERVICES, cum_weights=_COUNTER_CUM)[0]
        self.numbers[letter] = self.numbers[letter] % 999 + 1
        ticket = f"{letter}{self.numbers[letter]:03d}"
        correlation = self._correlation(today, ticket)
        issued = contract.TicketIssued(
            ticket=ticket, service=service, waiting_ahead=len(self.queue)
        )
        self.queue.append((ticket, now, correlation))
        return [Emission(Channel.EVENTS, "ticket-issued", issued, correlation), *self._call(now)]

    # -- the schedule --------------------------------------------------------------------------
    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        freed = False
        for i, free_at in enumerate(self.free_at):
            if free_at is not None and free_at <= now:
                self.free_at[i] = None
                freed = True
        if freed:
            out.extend(self._call(now))
        for i, kiosk in enumerate(self.kiosks):
            if kiosk.due <= now:
                out.append(self._kiosk_change(i, now, "technician"))
        if now >= self.visitors.due and self.visitors.fire(now):
            out.extend(self._visit(now))
        if self.telemetry_due(now, 60):
            out.append(self._telemetry())
        return out

    def _kiosk_change(self, i: int, now: datetime, by: str) -> Emission:
        kiosk = self.kiosks[i]
        if kiosk.ok:
            kiosk.ok, kiosk.since = False, now
            kiosk.reason = self.rng.choice(HARDWARE + SOFTWARE)
            kiosk.due = now + self._kiosk_gap(kiosk)
            fault = contract.KioskFault(kiosk=i + 1, reason=kiosk.reason)
            return Emission(Channel.EVENTS, "kiosk-fault", fault)
        kiosk.ok, kiosk.reason = True, None
        kiosk.due = now + self._kiosk_gap(kiosk)
        down = int((now - kiosk.since).total_seconds())
        back = contract.KioskRecovered(kiosk=i + 1, down_s=max(0, down), by=by)
        return Emission(Channel.EVENTS, "kiosk-recovered", back)

    def _kiosk_status(self, i: int) -> contract.KioskStatus:
        kiosk = self.kiosks[i]
        status = "ok" if kiosk.ok else "fault"
        return contract.KioskStatus(kiosk=i + 1, status=status, reason=kiosk.reason)

    def _telemetry(self) -> Emission:
        data = contract.ServiceCentreTelemetry(
            queue_length=len(self.queue),
            avg_wait_s=sum(self.waits) // len(self.waits) if self.waits else 0,
            kiosks=[self._kiosk_status(i) for i in range(len(self.kiosks))],
            counters_open=sum(self.open),
            counters=len(self.open),
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        out: list[Emission] = []
        if isinstance(params, contract.OpenCounter):
            if params.counter is None:
                closed = [i for i, is_open in enumerate(self.open) if not is_open]
                if not closed:
                    return Outcome.rejected("every counter is already open")
                i = closed[0]
            else:
                i = params.counter - 1
                if i >= len(self.open):
                    return Outcome.rejected(f"no counter {params.counter} "
                                   f"(centre has {len(self.open)})")  # fmt: skip
                if self.open[i]:
                    return Outcome.rejected(f"counter {params.counter} is already open")
            self.open[i] = True
            out = self._call(now)
        elif isinstance(params, contract.CloseCounter):
            i = params.counter - 1
            if i >= len(self.open):
                return Outcome.rejected(f"no counter {params.counter} "
                               f"(centre has {len(self.open)})")  # fmt: skip
            if not self.open[i]:
                return Outcome.rejected(f"counter {params.counter} is already closed")
            self.open[i] = False
        elif isinstance(params, contract.RebootKiosk):
            i = params.kiosk - 1
            if i >= len(self.kiosks):
                return Outcome.rejected(f"no kiosk {params.kiosk} "
                               f"(centre has {len(self.kiosks)})")  # fmt: skip
            kiosk = self.kiosks[i]
            if kiosk.ok:
                return Outcome.rejected(f"kiosk {params.kiosk} is working")
            if kiosk.reason in HARDWARE:
                return Outcome.rejected(f"kiosk {params.kiosk} has a {kiosk.reason}: "
                               "a reboot cannot fix it, a technician is on the way")  # fmt: skip
            out = [self._kiosk_change(i, now, "reboot")]
        else:
            return Outcome.rejected(f"unsupported command {command.name}")
        return Outcome.done((*out, self._telemetry()))
