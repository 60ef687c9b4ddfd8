"""A smart book house: readers come after school and in the evening, books go out and come back."""

from __future__ import annotations

import heapq
import math
from array import array
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import book_house as contract
from contracts.topics import Channel
from contracts.vocabulary import STREET_TZ
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

OVERDUE_CHECK = time(0, 5)  # the lending system's nightly run


@register
class BookHouseBehaviour(Behaviour):
    """Rates: visits_per_hour, capacity, stay_min, books, on_loan_share, loan_days,
    borrow_share, reservation_share, late_share, telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        rng = self.rng
        self.capacity = max(1, min(1000, int(self.rate("capacity", 40))))
        self.loan_days = max(1, int(self.rate("loan_days", 14)))
        self.occupancy = 0
        self.is_open = True
        self.lights = True
        self.full_reported = False
        self.departures: list[datetime] = []
        # Loans: book -> (loan number, resident, due date); heaps carry the loan number, so an
        # entry for a loan that has since ended is recognised and dropped.
        self.loans: dict[int, tuple[int, str, date]] = {}
        self.returns: list[tuple[datetime, int, int]] = []
        self.overdue: list[tuple[datetime, int, int]] = []
        self.loan_seq = 0
        # Loans made on a linked journey keep the journey's id for their whole life.
        self.journey_loans: dict[int, str] = {}
        # Book numbers in a typed array (4 bytes each, not a 36-byte int object): the shelf
        # was the largest object of a simulated street (docs/benchmarks.md, section 3).
        self.shelf = array("I", range(max(1, min(999_999, int(self.rate("books", 3000))))))
        self.visits = daily.Arrivals(rng, self.rate("visits_per_hour", 12), daily.BOOK_HOUSE, now)
        # The street did not start today: some books are already out, a few already late.
        for _ in range(int(len(self.shelf) * min(self.rate("on_loan_share", 0.2), 0.9))):
            borrowed = now - timedelta(days=rng.uniform(0, self.loan_days + 7))
            self._lend(self._take_from_shelf(), self.population.pick(rng), borrowed, now)
        self.next_telemetry = now

    def next_wakeup(self) -> datetime:
        never = self.visits.due + daily.NEVER
        return min(
            self.visits.due,
            self.departures[0] if self.departures else never,
            self.returns[0][0] if self.returns else never,
            self.overdue[0][0] if self.overdue else never,
            self.next_telemetry,
        )

    # -- loans ---------------------------------------------------------------------------------
    def _take_from_shelf(self) -> int:
        shelf = self.shelf
        j = self.rng.randrange(len(shelf))
        shelf[j], shelf[-1] = shelf[-1], shelf[j]
        return shelf.pop()

    def _at(self, day: date, at: time, now: datetime) -> datetime:
        return datetime.combine(day, at, tzinfo=STREET_TZ).astimezone(now.tzinfo)

    def _daytime(self, day: date, now: datetime) -> datetime:
        # People bring books back while the street is awake.
        at = time(self.rng.randrange(9, 22), self.rng.randrange(60))
        return self._at(day, at, now)

    def _lend(self, book: int, resident: str, borrowed: datetime, now: datetime) -> date:
        rng = self.rng
        self.loan_seq += 1
        first_day = daily.local_date(borrowed)
        due = first_day + timedelta(days=self.loan_days)
        self.loans[book] = (self.loan_seq, resident, due)
        # Most readers return within the loan period; some are late by days or weeks.
        if rng.random() < self.rate("late_share", 0.15):
            days = self.loan_days + 1 + int(rng.expovariate(1 / 7))
        else:
            days = rng.randint(1, self.loan_days)
        back = self._daytime(first_day + timedelta(days=days), now)
        if back <= now:  # a loan from before the start that is already late: back soon
            back = self._daytime(daily.local_date(now) + timedelta(days=rng.randint(0, 3)), now)
            if back <= now:
                back += timedelta(days=1)
        heapq.heappush(self.returns, (back, self.loan_seq, book))
        check = self._at(due + timedelta(days=1), OVERDUE_CHECK, now)
        if check > now:
            heapq.heappush(self.overdue, (check, self.loan_seq, book))
        return due

    def _correlation(self, loan_no: int) -> str:
        # One loan's borrowed / overdue / returned events share this id.
        return self.journey_loans.get(loan_no) or f"{self.spec.id[:40]}:loan-{loan_no}"

    def _return(self, now: datetime) -> Emission:
        _, loan_no, book = heapq.heappop(self.returns)
        _, resident, due = self.loans.pop(book)
        correlation = self._correlation(loan_no)
        self.journey_loans.pop(loan_no, None)
        self.shelf.append(book)
        late = max(0, (daily.local_date(now) - due).days)
        inside = self.is_open and self.rng.random() < 0.7
        data = contract.BookReturned(
            book_id=f"bk-{book:06d}", resident=resident, via="desk" if inside else "drop-box",
            days_late=late,
        )  # fmt: skip
        return Emission(Channel.EVENTS, "book-returned", data, correlation)

    def _visit(self, now: datetime) -> list[Emission]:
        if not self.is_open:
            return []
        rng = self.rng
        if self.occupancy >= self.capacity:
            if self.full_reported:
                return []
            self.full_reported = True
            full = contract.OverCapacity(occupancy=self.occupancy, capacity=self.capacity)
            return [Emission(Channel.EVENTS, "over-capacity", full)]
        self.occupancy += 1
        stay_min = max(self.rate("stay_min", 45), 1.0)
        stay = min(240.0, 5 + rng.expovariate(1 / stay_min))
        heapq.heappush(self.departures, now + timedelta(minutes=stay))
        if rng.random() >= self.rate("borrow_share", 0.35) or not self.shelf:
            return []
        book = self._take_from_shelf()
        resident = self.population.pick(rng)
        due = self._lend(book, resident, now, now)
        correlation = self._correlation(self.loan_seq)
        if rng.random() < self.rate("reservation_share", 0.1):
            held = contract.ReservationCollected(
                book_id=f"bk-{book:06d}", resident=resident, due_date=due
            )
            return [Emission(Channel.EVENTS, "reservation-collected", held, correlation)]
        lent = contract.BookBorrowed(book_id=f"bk-{book:06d}", resident=resident, due_date=due)
        return [Emission(Channel.EVENTS, "book-borrowed", lent, correlation)]

    def journey_step(self, resident: str, correlation_id: str, now: datetime) -> list[Emission]:
        """A resident on a journey drops in to borrow a book: a seat for a short while, a book
        off the shelf, a loan like any other (returned or overdue later, same id)."""
        if not self.is_open:
            return []  # closed: they walk on
        if self.occupancy >= self.capacity:
            return self._visit(now)  # full like for anyone else (no book, maybe over-capacity)
        self.occupancy += 1
        heapq.heappush(self.departures, now + timedelta(minutes=self.rng.uniform(5, 15)))
        if not self.shelf:
            return []
        book = self._take_from_shelf()
        due = self._lend(book, resident, now, now)
        self.journey_loans[self.loan_seq] = correlation_id
        lent = contract.BookBorrowed(book_id=f"bk-{book:06d}", resident=resident, due_date=due)
        return [Emission(Channel.EVENTS, "book-borrowed", lent, correlation_id)]

    # -- the schedule --------------------------------------------------------------------------
    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        while self.departures and self.departures[0] <= now:
            heapq.heappop(self.departures)
            self.occupancy -= 1
            self.full_reported = self.full_reported and self.occupancy >= self.capacity
        while self.returns and self.returns[0][0] <= now:
            out.append(self._return(now))
        while self.overdue and self.overdue[0][0] <= now:
            _, loan_no, book = heapq.heappop(self.overdue)
            loan = self.loans.get(book)
            if loan is not None and loan[0] == loan_no:
                late = contract.BookOverdue(
                    book_id=f"bk-{book:06d}", resident=loan[1], due_date=loan[2]
                )
                out.append(
                    Emission(Channel.EVENTS, "book-overdue", late, self._correlation(loan_no))
                )
        if now >= self.visits.due and self.visits.fire(now):
            out.extend(self._visit(now))
        if self.telemetry_due(now, 60):
            out.append(self._telemetry(now))
        return out

    def _telemetry(self, now: datetime) -> Emission:
        # A quiet room is ~28 dB; people add murmur, roughly logarithmically.
        noise = 28 + 12 * math.log10(1 + self.occupancy) + self.rng.gauss(0, 1.5)
        # Air conditioning holds the room between 18 and 26 °C; a full room runs warmer.
        temp = min(26.0, max(18.0, daily.ambient_c(now))) + 0.04 * self.occupancy
        data = contract.BookHouseTelemetry(
            occupancy=self.occupancy,
            capacity=self.capacity,
            free_seats=self.capacity - self.occupancy,
            noise_db=round(max(20.0, noise), 1),
            temperature_c=round(temp + self.rng.gauss(0, 0.2), 1),
            open=self.is_open,
            lights=self.lights,
            books_on_shelf=len(self.shelf),
            books_on_loan=len(self.loans),
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        if isinstance(params, contract.Open):
            if self.is_open:
                return Outcome.rejected("book house is already open")
            self.is_open = True
        elif isinstance(params, contract.Close):
            if not self.is_open:
                return Outcome.rejected("book house is already closed")
            self.is_open = False
            self.occupancy = 0
            self.departures.clear()
            self.full_reported = False
        elif isinstance(params, contract.LightsOn):
            if self.lights:
                return Outcome.rejected("lights are already on")
            self.lights = True
        elif isinstance(params, contract.LightsOff):
            if not self.lights:
                return Outcome.rejected("lights are already off")
            self.lights = False
        else:
            return Outcome.rejected(f"unsupported command {command.name}")
        return Outcome.done((self._telemetry(now),))
