"""The fleet file's model: which devices stand on the street, where, and how busy they are
(read from disk by adapters/fleet.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import Identifier


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = Field(ge=0, le=1000)
    y: float = Field(ge=0, le=1000)


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Identifier
    kind: Identifier
    name_en: str
    name_zh: str
    position: Position
    # Per-device behaviour knobs (rates per hour, capacities); each kind documents its own.
    rates: dict[str, float] = Field(default_factory=dict)


class Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street_en: str = "Lijia Street"
    street_zh: str = "礼嘉街道"
    seed: int = 2026
    population: int = Field(default=2000, ge=1)
    # Linked journeys (gate, then book house, medicine cabinet, property app; one correlation
    # id) started per hour on an average weekday hour, street-wide; 0 turns them off.
    journeys_per_hour: float = Field(default=0.0, ge=0)
    devices: list[DeviceSpec]

    def by_id(self) -> dict[str, DeviceSpec]:
        return {d.id: d for d in self.devices}

    def scaled(self, count: int) -> Fleet:
        """A street of `count` devices: the fleet's devices first, then copies of them in turn
        (`<id>-c<n>`, nudged on the map), so the mix of kinds and rates stays the same. The
        street-wide journey rate grows with the street (a copy brings its own residents' trips)."""
        if count < 1:
            raise ValueError("a street has at least one device")
        if count <= len(self.devices):
            return self.model_copy(update={"devices": self.devices[:count]})
        devices = list(self.devices)
        n = 0
        while len(devices) < count:
            base = self.devices[n % len(self.devices)]
            copy_no = n // len(self.devices) + 1
            pos = Position(
                x=(base.position.x + 7 * copy_no) % 1000, y=(base.position.y + 5 * copy_no) % 1000
            )
            devices.append(
                base.model_copy(
                    update={
                        "id": f"{base.id}-c{copy_no}",
                        "name_en": f"{base.name_en} #{copy_no + 1}",
                        "name_zh": f"{base.name_zh} {copy_no + 1}号",
                        "position": pos,
                    }
                )
            )
            n += 1
        journeys = self.journeys_per_hour * count / len(self.devices)
        return self.model_copy(update={"devices": devices, "journeys_per_hour": journeys})


def parse_fleet(data: Any) -> Fleet:
    fleet = Fleet.model_validate(data)
    ids = [d.id for d in fleet.devices]
    if len(ids) != len(set(ids)):
        raise ValueError("fleet has duplicate device ids")
    return fleet
