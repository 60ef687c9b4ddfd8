"""Residents' property-management app: requests to property staff and their service clock."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from contracts.alarms import DeadlineRule
from contracts.envelope import ResidentRef, Token, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "property-app"

# Staff are named by their work code, never by name.
StaffRef = Annotated[str, StringConstraints(pattern=r"^staff-[0-9]{2,4}$")]
Category = Literal["repair", "cleaning", "noise", "security", "parking"]
Level = Annotated[int, Field(ge=1, le=3, description="1 team lead, 2 manager, 3 street office")]


class RequestCreated(WireModel):
    """A resident filed a request; `request_id` is also the correlation id of its whole life."""

    request_id: Token
    category: Category
    resident: ResidentRef
    due: AwareDatetime = Field(description="when the service promise (SLA) runs out")


class RequestAssigned(WireModel):
    request_id: Token
    staff: StaffRef
    by: Literal["dispatcher", "operator"] = "dispatcher"


class RequestResolved(WireModel):
    request_id: Token
    resolution_min: int = Field(ge=0, le=60 * 24 * 365, description="from creation")
    on_time: bool
    by: Literal["staff", "operator"] = "staff"


class RequestRated(WireModel):
    """The resident rated the service after it was resolved."""

    request_id: Token
    rating: int = Field(ge=1, le=5)


class RequestEscalated(WireModel):
    request_id: Token
    level: Level
    reason: Literal["overdue", "operator"]


class PropertyAppTelemetry(WireModel):
    open_requests: int = Field(ge=0)
    overdue_requests: int = Field(ge=0)
    unassigned_requests: int = Field(default=0, ge=0)
    avg_resolution_min: int = Field(ge=0, description="over the last 50 resolved requests")


class Assign(WireModel):
    """Give a request (still open) to a member of staff; reassigning is allowed."""

    request_id: Token
    staff: StaffRef


class Resolve(WireModel):
    """Close an assigned request as done."""

    request_id: Token


class Escalate(WireModel):
    """Raise an open request one level up."""

    request_id: Token


SPEC = KindSpec(
    kind=KIND,
    label=Text("Property-management app", "物业服务App"),
    telemetry=PropertyAppTelemetry,
    commands={"assign": Assign, "resolve": Resolve, "escalate": Escalate},
    events={
        "request-created": RequestCreated,
        "request-assigned": RequestAssigned,
        "request-resolved": RequestResolved,
        "request-rated": RequestRated,
        "request-escalated": RequestEscalated,
    },
    personal_events=frozenset({"request-created"}),
    alarms=(
        DeadlineRule(
            "request-overdue",
            Severity.MAJOR,
            Text("Request past its deadline", "工单超时"),
            start="request-created",
            end=("request-resolved",),
            key="request_id",
            due_field="due",
        ),
    ),
    stats=(
        StatSpec("requests", Text("Requests filed", "报事报修"), event_type="request-created"),
        StatSpec("resolved", Text("Requests resolved", "已解决"), event_type="request-resolved"),
        StatSpec(
            "open-requests", Text("Open requests", "待处理工单"), telemetry_field="open_requests"
        ),
    ),
)
