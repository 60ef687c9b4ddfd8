"""Devices: the registry with availability and twin state."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlmodel import col, select

from backend.api.deps import SessionDep
from backend.api.schemas import DevicePublic, DevicesPublic
from backend.models import Device

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=DevicesPublic)
def list_devices(
    session: SessionDep, kind: str | None = None, availability: str | None = None
) -> DevicesPublic:
    query = select(Device).order_by(col(Device.device_id))
    if kind:
        query = query.where(Device.kind == kind)
    if availability:
        query = query.where(Device.availability == availability)
    rows = session.exec(query).all()
    return DevicesPublic(data=[DevicePublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, session: SessionDep) -> DevicePublic:
    row = session.get(Device, device_id)
    if row is None:
        raise HTTPException(404, "no such device")
    return DevicePublic.model_validate(row)
