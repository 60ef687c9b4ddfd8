"""Smart book house: a 24 h self-service reading room and lending kiosk."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from contracts.alarms import TelemetryRule
from contracts.envelope import ResidentRef, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "book-house"

# The library barcode on the book, not its title: what residents read is personal.
BookId = Annotated[str, StringConstraints(pattern=r"^bk-[0-9]{6}$")]


class BookBorrowed(WireModel):
    book_id: BookId
    resident: ResidentRef
    due_date: date


class BookReturned(WireModel):
    book_id: BookId
    resident: ResidentRef
    via: Literal["desk", "drop-box"] = "desk"
    days_late: int = Field(default=0, ge=0, le=3650)


class BookOverdue(WireModel):
    """A loan passed its due date without a return (once per loan)."""

    book_id: BookId
    resident: ResidentRef
    due_date: date


class ReservationCollected(WireModel):
    """A book reserved in the app was picked up from the hold shelf; it is now on loan."""

    book_id: BookId
    resident: ResidentRef
    due_date: date


class OverCapacity(WireModel):
    """Someone was turned away because every seat was taken (once per full spell)."""

    occupancy: int = Field(ge=0, le=1000)
    capacity: int = Field(ge=1, le=1000)


class BookHouseTelemetry(WireModel):
    occupancy: int = Field(ge=0, le=1000)
    capacity: int = Field(ge=1, le=1000)
    free_seats: int = Field(ge=0, le=1000)
    noise_db: float = Field(ge=0, le=130)
    temperature_c: float = Field(ge=-10, le=50)
    open: bool
    lights: bool
    books_on_shelf: int = Field(default=0, ge=0)
    books_on_loan: int = Field(default=0, ge=0)


class Open(WireModel):
    """Open the reading room to visitors."""


class Close(WireModel):
    """Close the reading room; visitors are asked to leave. The return drop-box stays open."""

    reason: str = Field(default="operator", max_length=100)


class LightsOn(WireModel):
    """Switch the reading room lights on."""


class LightsOff(WireModel):
    """Switch the reading room lights off."""


SPEC = KindSpec(
    kind=KIND,
    label=Text("Smart book house", "智慧书屋"),
    telemetry=BookHouseTelemetry,
    commands={"open": Open, "close": Close, "lights-on": LightsOn, "lights-off": LightsOff},
    events={
        "book-borrowed": BookBorrowed,
        "book-returned": BookReturned,
        "book-overdue": BookOverdue,
        "reservation-collected": ReservationCollected,
        "over-capacity": OverCapacity,
    },
    personal_events=frozenset(
        {"book-borrowed", "book-returned", "book-overdue", "reservation-collected"}
    ),
    alarms=(
        TelemetryRule(
            "over-capacity",
            Severity.MAJOR,
            Text("Book house full", "书屋满员"),
            field="occupancy",
            op=">=",
            value="field:capacity",
        ),
    ),
    stats=(
        StatSpec("borrowed", Text("Books borrowed", "借书"), event_type="book-borrowed"),
        StatSpec("returned", Text("Books returned", "还书"), event_type="book-returned"),
        StatSpec("readers", Text("Readers now", "在馆读者"), telemetry_field="occupancy"),
    ),
)
