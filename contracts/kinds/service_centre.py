"""24-hour convenience service centre: tickets for staffed counters, and self-service kiosks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from contracts.alarms import EventRule, TelemetryRule
from contracts.envelope import WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "service-centre"

MAX_COUNTERS = 20
MAX_KIOSKS = 16
# Printed on the paper ticket and called on the screen: a letter per service, a daily number.
Ticket = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{3}$")]
CounterNo = Annotated[int, Field(ge=1, le=MAX_COUNTERS)]
KioskNo = Annotated[int, Field(ge=1, le=MAX_KIOSKS)]
CounterService = Literal[
    "social-security", "household-registration", "elderly-care", "utilities", "general"
]
KioskFaultReason = Literal[
    "paper-jam", "printer-offline", "card-reader", "network", "software-crash"
]


class TicketIssued(WireModel):
    """A visitor took a ticket for a staffed counter. No name: tickets are anonymous."""

    ticket: Ticket
    service: CounterService
    waiting_ahead: int = Field(ge=0, le=10_000)


class TicketServed(WireModel):
    """A ticket was called to a counter."""

    ticket: Ticket
    counter: CounterNo
    wait_s: int = Field(ge=0, le=7 * 86_400)


class SelfServiceTransaction(WireModel):
    kiosk: KioskNo
    service: Literal["bill-payment", "printing", "id-photo"]
    duration_s: int = Field(ge=1, le=3600)


class KioskFault(WireModel):
    kiosk: KioskNo
    reason: KioskFaultReason


class KioskRecovered(WireModel):
    kiosk: KioskNo
    down_s: int = Field(ge=0, le=30 * 86_400)
    by: Literal["technician", "reboot"]


class KioskStatus(WireModel):
    kiosk: KioskNo
    status: Literal["ok", "fault"]
    reason: KioskFaultReason | None = None


class ServiceCentreTelemetry(WireModel):
    queue_length: int = Field(ge=0, le=10_000)
    avg_wait_s: int = Field(ge=0, le=7 * 86_400, description="over the last 20 tickets served")
    kiosks: list[KioskStatus] = Field(max_length=MAX_KIOSKS)
    counters_open: int = Field(ge=0, le=MAX_COUNTERS)
    counters: int = Field(ge=0, le=MAX_COUNTERS)


class OpenCounter(WireModel):
    """Staff a counter: the given one, or the lowest-numbered closed one."""

    counter: CounterNo | None = None


class CloseCounter(WireModel):
    """Stop calling tickets to a counter; a visitor already at it is served to the end."""

    counter: CounterNo


class RebootKiosk(WireModel):
    """Restart a kiosk: clears software and network faults, not hardware ones."""

    kiosk: KioskNo


SPEC = KindSpec(
    kind=KIND,
    label=Text("24-hour service centre", "24小时便民服务中心"),
    telemetry=ServiceCentreTelemetry,
    commands={
        "open-counter": OpenCounter,
        "close-counter": CloseCounter,
        "reboot-kiosk": RebootKiosk,
    },
    events={
        "ticket-issued": TicketIssued,
        "ticket-served": TicketServed,
        "self-service-transaction": SelfServiceTransaction,
        "kiosk-fault": KioskFault,
        "kiosk-recovered": KioskRecovered,
    },
    alarms=(
        EventRule(
            "kiosk-fault",
            Severity.MINOR,
            Text("Kiosk fault", "自助机故障"),
            clear_on=("kiosk-recovered",),
        ),
        TelemetryRule(
            "long-queue",
            Severity.WARNING,
            Text("Long queue", "排队过长"),
            field="queue_length",
            op=">=",
            value=20,
            for_s=600,
        ),
    ),
    stats=(
        StatSpec("served", Text("Tickets served", "已办理"), event_type="ticket-served"),
        StatSpec(
            "self-service",
            Text("Self-service transactions", "自助办理"),
            event_type="self-service-transaction",
        ),
        StatSpec("queue", Text("People queuing", "排队人数"), telemetry_field="queue_length"),
    ),
)
