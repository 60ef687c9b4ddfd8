"""A smart medicine cabinet: daytime demand, flu waves, restock visits, a drifting cold chain."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from itertools import accumulate

from pydantic import BaseModel

from contracts.envelope import Command
from contracts.kinds import medicine_cabinet as contract
from contracts.topics import Channel
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import register

# (sku, relative demand, is a cold/flu medicine): what a Chongqing community cabinet stocks.
CATALOGUE: tuple[tuple[str, float, bool], ...] = (
    ("ibuprofen-200mg", 3.0, True),
    ("paracetamol-500mg", 3.0, True),
    ("lianhua-qingwen-capsules", 2.5, True),
    ("ganmaoling-granules", 2.0, True),
    ("cough-syrup-150ml", 2.0, True),
    ("loratadine-10mg", 1.2, False),
    ("omeprazole-20mg", 1.0, False),
    ("oral-rehydration-salts", 0.8, False),
    ("adhesive-bandages", 1.5, False),
    ("iodophor-swabs", 1.0, False),
    ("insulin-pen-refill", 0.5, False),
    ("artificial-tears", 0.8, False),
)
COOLER_FAULTS = ("compressor", "power", "refrigerant-leak", "sensor")
RESTOCK_AT = time(10, 0)  # the pharmacy's round reaches the street mid-morning
RESTOCK_DOOR = timedelta(minutes=3)  # a quick refill keeps the cold chain in band
DOOR_ALERT = timedelta(minutes=2)
# Minutes for the cold compartment to close ~63 % of the gap to its target temperature.
TAU_COOLING_MIN, TAU_DOOR_OPEN_MIN, TAU_COOLER_FAILED_MIN = 15.0, 10.0, 90.0
HUMIDITY_CLOSED, HUMIDITY_OPEN, HUMIDITY_WARM = 45.0, 78.0, 62.0  # Chongqing air is humid


@register
class MedicineCabinetBehaviour(Behaviour):
    """Rates: dispenses_per_hour, slots, slot_capacity, low_stock, restock_every_days,
    flu_waves_per_month, flu_wave_days, cooler_failures_per_day, cooler_repair_h,
    door_jams_per_day, door_jam_min, door_forced_per_day, telemetry_every_s."""

    kind = contract.KIND

    def start(self, now: datetime) -> None:
        rng = self.rng
        n = max(1, min(contract.MAX_SLOTS, int(self.rate("slots", 12))))
        self.capacity = max(1, min(500, int(self.rate("slot_capacity", 30))))
        self.low = max(0, min(self.capacity - 1, int(self.rate("low_stock", 5))))
        stocked = [CATALOGUE[i % len(CATALOGUE)] for i in range(n)]
        self.cum_normal = list(accumulate(w for _, w, _ in stocked))
        # In a flu wave the doubled demand is mostly for cold and fever medicines.
        self.cum_flu = list(accumulate(w * (3.0 if flu else 1.0) for _, w, flu in stocked))
        self.skus = [sku for sku, _, _ in stocked]
        today = daily.local_date(now)
        self.stock = [rng.randint(self.capacity // 2, self.capacity) for _ in range(n)]
        self.expiry = [today + timedelta(days=rng.randint(1, 400)) for _ in range(n)]
        self.low_flagged = [s <= self.low for s in self.stock]
        self.today = today
        self.band = (2.0, 8.0)  # the usual pharmacy cold chain
        self.temperature = 5.0
        self.humidity = HUMIDITY_CLOSED
        self.updated = now
        self.excursion = False
        self.locked = False
        self.door_open = False
        self.door_authorised = False
        self.door_opened = now
        self.door_alerted = False
        self.door_close_at = now + daily.NEVER
        self.door_alert_at = now + daily.NEVER
        self.cooler_ok = True
        self.cooler_down_since = now
        self.flu_until = today
        self.demand = daily.Arrivals(rng, self.rate("dispenses_per_hour", 4), daily.MEDICINE, now)
        self.next_day = daily.next_local(now, time(0, 0))
        every = max(1, int(self.rate("restock_every_days", 2)))
        self.next_restock = daily.next_local(now, RESTOCK_AT) + timedelta(days=rng.randrange(every))
        self.next_cooler = now + self._cooler_gap()
        self.next_jam = now + daily.gap(rng, self.rate("door_jams_per_day", 0.1) / 24)
        self.next_forced = now + daily.gap(rng, self.rate("door_forced_per_day", 0.01) / 24)
        self.next_telemetry = now
        self.drift_per_min = 0.0
        self.drift_since = now

    def next_wakeup(self) -> datetime:
        return min(
            self.demand.due, self.next_day, self.next_restock, self.next_cooler, self.next_jam,
            self.next_forced, self.door_close_at, self.door_alert_at, self.next_telemetry,
        )  # fmt: skip

    # -- time passing ------------------------------------------------------------------------
    def _cooler_gap(self) -> timedelta:
        if self.cooler_ok:
            return daily.gap(self.rng, self.rate("cooler_failures_per_day", 0.05) / 24)
        return timedelta(minutes=30) + daily.gap(
            self.rng, 1 / max(self.rate("cooler_repair_h", 6), 0.1)
        )

    def _advance(self, now: datetime) -> list[Emission]:
        """Relax temperature and humidity towards where the door and cooler push them."""
        minutes = max(0.0, (now - self.updated).total_seconds() / 60)
        self.updated = max(self.updated, now)
        if minutes:
            lo, hi = self.band
            if self.door_open:  # room air pours in faster than any compressor can fight
                target, tau, wet = daily.ambient_c(now), TAU_DOOR_OPEN_MIN, HUMIDITY_OPEN
            elif not self.cooler_ok:
                target, tau, wet = daily.ambient_c(now), TAU_COOLER_FAILED_MIN, HUMIDITY_WARM
            else:
                target, tau, wet = (lo + hi) / 2, TAU_COOLING_MIN, HUMIDITY_CLOSED
            keep = math.exp(-minutes / tau)
            self.temperature = target + (self.temperature - target) * keep
            self.humidity = wet + (self.humidity - wet) * keep
        lo, hi = self.band
        outside = not lo - 0.05 <= self.temperature <= hi + 0.05
        if outside and not self.excursion:
            self.excursion = True
            data = contract.TemperatureExcursion(
                temperature_c=round(self.temperature, 1), min_c=lo, max_c=hi
            )
            return [Emission(Channel.EVENTS, "temperature-excursion", data)]
        if not outside:
            self.excursion = False
        return []

    def wake(self, now: datetime) -> list[Emission]:
        out = self._advance(now)
        if now >= self.next_day:
            out.extend(self._new_day(now))
        if now >= self.next_cooler:
            out.append(self._cooler(now))
        if now >= self.door_close_at:
            self.door_open = self.door_authorised = False
            self.door_close_at = self.door_alert_at = now + daily.NEVER
        if now >= self.door_alert_at:
            self.door_alert_at = now + daily.NEVER
            self.door_alerted = True
            seconds = int((now - self.door_opened).total_seconds())
            out.append(Emission(Channel.EVENTS, "door-left-open", contract.DoorLeftOpen(
                seconds=max(1, seconds))))  # fmt: skip
        if now >= self.next_jam:
            self.next_jam = now + daily.gap(self.rng, self.rate("door_jams_per_day", 0.1) / 24)
            # The door fails to latch after service or a knock; someone notices in a while.
            jam_min = max(self.rate("door_jam_min", 20), 1.0)
            self._open_door(now, timedelta(minutes=self.rng.expovariate(1 / jam_min)), False)
        if now >= self.next_forced:
            self.next_forced = now + daily.gap(
                self.rng, self.rate("door_forced_per_day", 0.01) / 24
            )
            forced = contract.DoorForced(while_locked=self.locked)
            out.append(Emission(Channel.EVENTS, "door-forced", forced))
            self._open_door(now, timedelta(minutes=2 + self.rng.expovariate(1 / 5)), False)
        if now >= self.next_restock:
            every = max(1, int(self.rate("restock_every_days", 2)))
            self.next_restock += timedelta(days=every)
            out.extend(self._restock(range(len(self.stock)), None, "schedule", now))
        if now >= self.demand.due and self.demand.fire(now):
            out.extend(self._dispense(now))
        if self.telemetry_due(now, 60):
            out.append(self._telemetry())
        return out

    def _new_day(self, now: datetime) -> list[Emission]:
        self.next_day = daily.next_local(now, time(0, 0))
        today = daily.local_date(now)
        self.today = today
        if today >= self.flu_until:
            per_day = self.rate("flu_waves_per_month", 1) / 30
            if self.rng.random() < per_day:
                self.flu_until = today + timedelta(days=int(self.rate("flu_wave_days", 5)))
        self.demand.boost = 2.0 if today < self.flu_until else 1.0
        out: list[Emission] = []
        for i, expires in enumerate(self.expiry):
            if expires < today and self.stock[i]:
                gone = contract.ItemExpired(
                    slot=i + 1, sku=self.skus[i], quantity=self.stock[i], expired_on=expires
                )
                out.append(Emission(Channel.EVENTS, "item-expired", gone))
                self.stock[i] = 0
                self.low_flagged[i] = True
        return out

    def _cooler(self, now: datetime) -> Emission:
        self.cooler_ok = not self.cooler_ok
        self.next_cooler = now + self._cooler_gap()
        if not self.cooler_ok:
            self.cooler_down_since = now
            fault = contract.CoolerFault(reason=self.rng.choice(COOLER_FAULTS))
            return Emission(Channel.EVENTS, "cooler-fault", fault)
        down = int((now - self.cooler_down_since).total_seconds())
        return Emission(Channel.EVENTS, "cooler-recovered", contract.CoolerRecovered(down_s=down))

    def _open_door(self, now: datetime, for_: timedelta, authorised: bool) -> None:
        if not self.door_open:
            self.door_open = True
            self.door_opened = now
            self.door_authorised = authorised
            self.door_alerted = False
            self.door_close_at = now + for_
        else:
            self.door_close_at = max(self.door_close_at, now + for_)
            self.door_authorised = self.door_authorised and authorised
        # Staff servicing the cabinet hold the door open on purpose; anything else alerts once.
        alert = self.door_opened + DOOR_ALERT
        if not (self.door_authorised or self.door_alerted) and self.door_close_at > alert:
            self.door_alert_at = max(now, alert)

    # -- residents and staff ------------------------------------------------------------------
    def _dispense(
        self, now: datetime, resident: str | None = None, correlation: str | None = None
    ) -> list[Emission]:
        if self.locked:
            return []  # the screen says "out of service"; nobody is served
        rng = self.rng
        cum = self.cum_flu if self.demand.boost > 1 else self.cum_normal
        slot = rng.choices(range(len(self.stock)), cum_weights=cum)[0]
        roll = rng.random()
        wanted = 1 if roll < 0.8 else 2 if roll < 0.95 else 3
        sku = self.skus[slot]
        if self.stock[slot] == 0:
            out = contract.StockOut(slot=slot + 1, sku=sku, requested=wanted)
            return [Emission(Channel.EVENTS, "stock-out", out, correlation)]
        quantity = min(wanted, self.stock[slot])
        self.stock[slot] -= quantity
        resident = resident or self.population.pick(rng)
        given = contract.MedicineDispensed(
            slot=slot + 1, sku=sku, quantity=quantity, resident=resident
        )
        events = [Emission(Channel.EVENTS, "medicine-dispensed", given, correlation)]
        if self.stock[slot] <= self.low and not self.low_flagged[slot]:
            self.low_flagged[slot] = True
            low = contract.StockLow(
                slot=slot + 1, sku=sku, remaining=self.stock[slot], threshold=self.low
            )
            events.append(Emission(Channel.EVENTS, "stock-low", low))
        return events

    def journey_step(self, resident: str, correlation_id: str, now: datetime) -> list[Emission]:
        """A resident on a journey takes medicine: the same demand mix and stock as anyone."""
        return self._advance(now) + self._dispense(now, resident, correlation_id)

    def _restock(
        self, slots: range | list[int], quantity: int | None, by: str, now: datetime
    ) -> list[Emission]:
        filled: list[int] = []
        units = 0
        for i in slots:
            add = self.capacity - self.stock[i]
            if quantity is not None:
                add = min(add, quantity)
            if add <= 0:
                continue
            if self.stock[i] == 0:
                # A fresh batch; leftover units keep the older (earlier) expiry date.
                self.expiry[i] = self.today + timedelta(days=self.rng.randint(90, 720))
            self.stock[i] += add
            self.low_flagged[i] = self.stock[i] <= self.low
            filled.append(i + 1)
            units += add
        if not filled:
            return []
        self._open_door(now, RESTOCK_DOOR, True)
        data = contract.Restocked(slots=filled, units=units, by=by)
        return [Emission(Channel.EVENTS, "restocked", data)]

    def _telemetry(self) -> Emission:
        lo, hi = self.band
        data = contract.CabinetTelemetry(
            stock=list(self.stock),
            temperature_c=round(self.temperature + self._drift() + self.rng.gauss(0, 0.1), 1),
            humidity_pct=round(min(100.0, max(0.0, self.humidity + self.rng.gauss(0, 0.5))), 1),
            band_min_c=lo,
            band_max_c=hi,
            door="open" if self.door_open else "closed",
            cooler="ok" if self.cooler_ok else "failed",
            locked=self.locked,
        )
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def fault(
        self, fault: str, on: bool, now: datetime, drift_per_min: float = 0.0
    ) -> list[Emission]:
        if fault not in ("cooler-failure", "door-jam", "sensor-drift"):
            return super().fault(fault, on, now, drift_per_min)  # raises, before any change
        out = self._advance(now)  # the physics up to now, under the old conditions
        if fault == "cooler-failure":
            if on == self.cooler_ok:  # else already in that state: nothing to report
                out.append(self._cooler(now))
            if on:  # the drill decides when it is repaired, even if it had failed on its own
                self.next_cooler = now + daily.NEVER
            return out
        if fault == "door-jam":
            if on:
                self._open_door(now, timedelta(days=1), False)
            elif self.door_open:
                self.door_close_at = now
            return out
        if fault == "sensor-drift":
            self.drift_per_min = drift_per_min if on else 0.0
            self.drift_since = now
        return out

    def _drift(self) -> float:
        """How far the temperature sensor reads off the truth (a drill's sensor drift)."""
        if not self.drift_per_min:
            return 0.0
        return self.drift_per_min * (self.updated - self.drift_since).total_seconds() / 60

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        out = self._advance(now)
        if isinstance(params, contract.Restock):
            slots: range | list[int] = range(len(self.stock))
            if params.slot is not None:
                if params.slot > len(self.stock):
                    return Outcome.rejected(f"no slot {params.slot} (cabinet has "
                                   f"{len(self.stock)})", tuple(out))  # fmt: skip
                slots = [params.slot - 1]
            restocked = self._restock(slots, params.quantity, "operator", now)
            out += restocked
            if not restocked:
                which = f"slot {params.slot} is" if params.slot else "every slot is"
                return Outcome.rejected(f"{which} already full", tuple(out))
        elif isinstance(params, contract.Lock):
            if self.locked:
                return Outcome.rejected("cabinet is already locked", tuple(out))
            self.locked = True
        elif isinstance(params, contract.Unlock):
            if not self.locked:
                return Outcome.rejected("cabinet is not locked", tuple(out))
            self.locked = False
        elif isinstance(params, contract.SetTemperatureBand):
            if params.max_c - params.min_c < 1:
                return Outcome.rejected("max_c must be at least 1 °C above min_c", tuple(out))
            self.band = (params.min_c, params.max_c)
            self.excursion = False
            out += self._advance(now)  # a band that excludes the current reading alerts now
        else:
            return Outcome.rejected(f"unsupported command {command.name}", tuple(out))
        return Outcome.done((*out, self._telemetry()))
