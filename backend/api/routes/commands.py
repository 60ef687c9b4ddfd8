"""Commands: create (idempotent on command_id), publish to the device, follow their progress."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import ValidationError
from sqlmodel import col, select

from backend import commands
from backend.api.deps import CtxDep, Operator, SessionDep
from backend.api.schemas import CommandPublic, CommandRequest
from backend.models import CommandRecord, Device
from backend.publisher import PublishError
from contracts.catalogue import get_kind
from contracts.envelope import Command, new_id
from contracts.topics import Channel, Topic
from contracts.validation import ContractError, check_unicode, dumps

router = APIRouter(tags=["commands"])


@router.post(
    "/devices/{device_id}/commands",
    response_model=CommandPublic,
    status_code=202,
    responses={
        200: {"model": CommandPublic, "description": "this command_id was already sent"},
        409: {"description": "command_id already used for another command"},
    },
)
def send_command(
    device_id: str,
    body: CommandRequest,
    ctx: CtxDep,
    session: SessionDep,
    response: Response,
    _scope: Operator,
) -> CommandPublic:
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(404, "no such device")
    if body.command_id:
        existing = session.get(CommandRecord, body.command_id)
        if existing is not None:
            if existing.device_id != device_id or existing.name != body.name:
                raise HTTPException(409, "command_id already used for another command")
            response.status_code = 200
            return CommandPublic.model_validate(existing)
    spec = get_kind(device.kind)
    if body.name not in spec.commands:
        raise HTTPException(422, f"kind {device.kind!r} has no command {body.name!r}")
    try:
        check_unicode(body.params)
        params = spec.commands[body.name].model_validate(body.params)
    except ContractError as exc:
        raise HTTPException(422, exc.reason) from None
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
        raise HTTPException(422, f"invalid params: {','.join(fields)}") from None
    record = commands.create(
        session,
        command_id=body.command_id or new_id(),
        device_id=device_id,
        name=body.name,
        params=params.model_dump(mode="json"),
        now=ctx.clock.now(),
        timeout_s=ctx.settings.command_timeout_s,
    )
    command = Command(command_id=record.command_id, name=record.name, params=record.params)
    try:
        ctx.publisher.publish(Topic(device.kind, device_id, Channel.COMMANDS), dumps(command))
    except PublishError as exc:
        commands.mark_not_published(session, record.command_id, str(exc), ctx.clock.now())
    else:
        commands.mark_sent(session, record.command_id, ctx.clock.now())
    session.refresh(record)
    return CommandPublic.model_validate(record)


@router.get("/commands", response_model=list[CommandPublic])
def list_commands(session: SessionDep, device_id: str | None = None) -> list[CommandPublic]:
    query = select(CommandRecord).order_by(col(CommandRecord.created_at).desc()).limit(200)
    if device_id:
        query = query.where(CommandRecord.device_id == device_id)
    return [CommandPublic.model_validate(r) for r in session.exec(query).all()]


@router.get("/commands/{command_id}", response_model=CommandPublic)
def get_command(command_id: str, session: SessionDep) -> CommandPublic:
    row = session.get(CommandRecord, command_id)
    if row is None:
        raise HTTPException(404, "no such command")
    return CommandPublic.model_validate(row)
