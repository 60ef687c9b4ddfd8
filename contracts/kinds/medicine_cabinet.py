"""Smart medicine cabinet: 24 h self-service medicines, with a cold-chain compartment."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from contracts.alarms import EventRule, TelemetryRule
from contracts.envelope import Identifier, ResidentRef, WireModel
from contracts.kind_spec import KindSpec, StatSpec
from contracts.text import Text
from contracts.vocabulary import Severity

KIND = "medicine-cabinet"

MAX_SLOTS = 64
Slot = Annotated[int, Field(ge=1, le=MAX_SLOTS, description="slot number, from 1")]
Units = Annotated[int, Field(ge=0, le=500)]
Celsius = Annotated[float, Field(ge=-30, le=70)]


class MedicineDispensed(WireModel):
    """A resident took medicine from a slot (the choice is made at the cabinet's screen)."""

    slot: Slot
    sku: Identifier
    quantity: int = Field(ge=1, le=20)
    resident: ResidentRef


class Restocked(WireModel):
    """Staff refilled slots; a new batch brings a new expiry date."""

    slots: list[Slot] = Field(min_length=1, max_length=MAX_SLOTS)
    units: int = Field(ge=1, le=MAX_SLOTS * 500, description="units added in total")
    by: Literal["schedule", "operator"] = "schedule"


class StockLow(WireModel):
    """A slot fell to its low-stock threshold (once per crossing)."""

    slot: Slot
    sku: Identifier
    remaining: Units
    threshold: Units


class StockOut(WireModel):
    """Someone asked for a medicine whose slot is empty."""

    slot: Slot
    sku: Identifier
    requested: int = Field(ge=1, le=20)


class ItemExpired(WireModel):
    """A batch passed its expiry date and was withdrawn from sale."""

    slot: Slot
    sku: Identifier
    quantity: Units
    expired_on: date


class DoorForced(WireModel):
    """The service door opened without an authorised unlock."""

    while_locked: bool = False


class DoorLeftOpen(WireModel):
    """The service door has stayed open past the alert threshold (cold chain at risk)."""

    seconds: int = Field(ge=1, le=86_400)


class CoolerFault(WireModel):
    """The compressor stopped: the cold compartment drifts towards room temperature."""

    reason: Literal["compressor", "power", "refrigerant-leak", "sensor"]


class CoolerRecovered(WireModel):
    down_s: int = Field(ge=0, le=30 * 86_400)


class TemperatureExcursion(WireModel):
    """The cold compartment left its band (once per excursion)."""

    temperature_c: Celsius
    min_c: Celsius
    max_c: Celsius


class CabinetTelemetry(WireModel):
    stock: list[Units] = Field(max_length=MAX_SLOTS, description="units per slot, slot 1 first")
    temperature_c: Celsius
    humidity_pct: float = Field(ge=0, le=100)
    band_min_c: Celsius
    band_max_c: Celsius
    door: Literal["open", "closed"]
    cooler: Literal["ok", "failed"]
    locked: bool = False


class Restock(WireModel):
    """Refill one slot (or all when no slot is given) to capacity, or by `quantity`."""

    slot: Slot | None = None
    quantity: int | None = Field(default=None, ge=1, le=500)


class Lock(WireModel):
    """Stop dispensing (e.g. a recall, or after a forced door)."""

    reason: str = Field(default="operator", max_length=100)


class Unlock(WireModel):
    """Resume dispensing."""


class SetTemperatureBand(WireModel):
    min_c: float = Field(ge=-25, le=30)
    max_c: float = Field(ge=-25, le=30)


SPEC = KindSpec(
    kind=KIND,
    label=Text("Smart medicine cabinet", "智能药柜"),
    telemetry=CabinetTelemetry,
    commands={
        "restock": Restock,
        "lock": Lock,
        "unlock": Unlock,
        "set-temperature-band": SetTemperatureBand,
    },
    events={
        "medicine-dispensed": MedicineDispensed,
        "restocked": Restocked,
        "stock-low": StockLow,
        "stock-out": StockOut,
        "item-expired": ItemExpired,
        "door-forced": DoorForced,
        "door-left-open": DoorLeftOpen,
        "cooler-fault": CoolerFault,
        "cooler-recovered": CoolerRecovered,
        "temperature-excursion": TemperatureExcursion,
    },
    personal_events=frozenset({"medicine-dispensed"}),
    alarms=(
        TelemetryRule(
            "cold-chain-high",
            Severity.CRITICAL,
            Text("Cold chain too warm", "冷链温度过高"),
            field="temperature_c",
            op=">",
            value="field:band_max_c",
            for_s=300,
        ),
        TelemetryRule(
            "cold-chain-low",
            Severity.MAJOR,
            Text("Cold chain too cold", "冷链温度过低"),
            field="temperature_c",
            op="<",
            value="field:band_min_c",
            for_s=300,
        ),
        EventRule(
            "cooler-fault",
            Severity.MAJOR,
            Text("Cooler failed", "制冷故障"),
            clear_on=("cooler-recovered",),
        ),
        EventRule(
            "stock-low", Severity.WARNING, Text("Stock low", "库存偏低"), clear_on=("restocked",)
        ),
        EventRule(
            "stock-out", Severity.MAJOR, Text("Out of stock", "缺货"), clear_on=("restocked",)
        ),
        EventRule(
            "item-expired",
            Severity.MAJOR,
            Text("Expired medicine", "药品过期"),
            clear_on=("restocked",),
        ),
        EventRule("door-forced", Severity.CRITICAL, Text("Door forced", "柜门被撬")),
    ),
    stats=(
        StatSpec(
            "dispensed", Text("Medicines dispensed", "药品取用"), event_type="medicine-dispensed"
        ),
    ),
)
