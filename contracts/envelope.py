"""The envelope every device message travels in, plus availability, commands and results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from contracts.vocabulary import CommandResultStatus

SCHEMA_VERSION = 1

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
# Free-form ids made by clients (event ids, correlation ids, command ids): short, printable.
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
# A resident is only ever named by a keyed hash: never a name, photo or face template.
ResidentRef = Annotated[str, StringConstraints(pattern=r"^r-[0-9a-f]{16}$")]


class WireModel(BaseModel):
    """Base for everything on the wire: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(WireModel):
    """One message on the events, telemetry or command-results channel.

    `seq` counts every envelope a device publishes (all three channels) within one `boot` (a
    random id the device picks each time it starts), so a gap reveals loss and a repeated
    (boot, seq) with another event id reveals a replay. Injected events are made outside the
    device, carry seq 0 and no boot; gap detection skips them.
    """

    version: Literal[1] = 1  # SCHEMA_VERSION
    # Made by the device, once per event: redelivery of the same event keeps its id.
    event_id: Token
    device_id: Identifier
    kind: Identifier
    type: Identifier
    seq: int = Field(ge=0)
    boot: Token | None = None
    ts: AwareDatetime
    correlation_id: Token | None = None
    injected: bool = False
    run_id: Token | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Availability(WireModel):
    """Retained on the state topic. The Last Will carries reason `last-will` and no ts."""

    status: Literal["online", "offline"]
    reason: Literal["connected", "clean-shutdown", "last-will"]
    ts: AwareDatetime | None = None


class Command(WireModel):
    """Sent by the backend on a device's commands topic (never retained)."""

    command_id: Token = Field(default_factory=new_id)
    name: Identifier
    params: dict[str, Any] = Field(default_factory=dict)
    ts: AwareDatetime = Field(default_factory=utcnow)


class CommandResult(WireModel):
    """`data` of a `command-result` envelope on the command-results channel."""

    command_id: Token
    status: CommandResultStatus
    reason: str | None = Field(default=None, max_length=200)


COMMAND_RESULT_TYPE = "command-result"
TELEMETRY_TYPE = "telemetry"
