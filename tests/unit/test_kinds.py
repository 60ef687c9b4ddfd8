"""Every simulated kind, purely: deterministic, valid on the wire, physically sane, day-shaped."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.fleet import load_fleet
from contracts.catalogue import get_kind
from contracts.envelope import Command, Envelope
from contracts.fleet import DeviceSpec, Fleet, Position
from contracts.topics import Channel, Topic
from contracts.validation import dumps, parse_message, validate_data
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.kinds import behaviour_for
from devices.kinds.book_house import BookHouseBehaviour
from devices.kinds.gate import GateBehaviour
from devices.kinds.medicine_cabinet import MedicineCabinetBehaviour
from devices.kinds.property_app import PropertyAppBehaviour
from devices.kinds.school import SchoolBehaviour
from devices.kinds.service_centre import HARDWARE, SOFTWARE, ServiceCentreBehaviour
from devices.kinds.stereo import StereoBehaviour
from devices.population import Population
from devices.runner import device_rng

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC) - daily.CHINA  # Monday 00:00 in Chongqing
KINDS = ("gate", "medicine-cabinet", "book-house", "service-centre", "school", "stereo",
         "property-app")  # fmt: skip

Step = tuple[datetime, Emission]


def fleet_rates(kind: str) -> dict[str, float]:
    """The rates of the fleet file's first device of this kind: the street as shipped."""
    return next(d.rates for d in load_fleet().devices if d.kind == kind)


def make(
    kind: str,
    seed: int = 1,
    start: datetime = START,
    more: dict[str, float] | None = None,
    **rates: float,
) -> Behaviour:
    rates = {**fleet_rates(kind), **(more or {}), **rates}
    spec = DeviceSpec(id=f"test-{kind}", kind=kind, name_en="Test", name_zh="测试",
                      position=Position(x=500, y=500), rates=rates)  # fmt: skip
    behaviour = behaviour_for(kind)(spec, device_rng(seed, spec.id), Population(2000, seed))
    behaviour.start(start)
    return behaviour


def run(
    behaviour: Behaviour,
    hours: float,
    check: Callable[[Behaviour], None] | None = None,
) -> list[Step]:
    """Drive a behaviour like the session does: wake it at exactly the instants it asks for."""
    end = behaviour.next_wakeup() + timedelta(hours=hours)
    out: list[Step] = []
    last = behaviour.next_wakeup()
    while behaviour.next_wakeup() < end:
        due = behaviour.next_wakeup()
        assert due >= last, "time never runs backwards"
        last = due
        out.extend((due, e) for e in behaviour.wake(due))
        if check is not None:
            check(behaviour)
    return out


def events(steps: list[Step], *types: str) -> list[Step]:
    wanted = set(types)
    return [
        (t, e) for t, e in steps if e.channel is Channel.EVENTS and (not wanted or e.type in wanted)
    ]


def telemetry(steps: list[Step]) -> list[tuple[datetime, Any]]:
    return [(t, e.data) for t, e in steps if e.channel is Channel.TELEMETRY]


def hour(t: datetime) -> int:
    return daily.local(t).hour


def command(behaviour: Behaviour, name: str, now: datetime, **params: Any) -> Outcome:
    spec = get_kind(behaviour.kind)
    model = spec.command_model(name).model_validate(params)
    outcome = behaviour.handle(Command(command_id="t-1", name=name, params=params), model, now)
    for e in outcome.emissions:
        validate_data(spec, e.channel, e.type, e.data.model_dump(mode="json", exclude_none=True))
    assert outcome.status in ("done", "rejected")
    assert (outcome.reason is None) == (outcome.status == "done"), outcome
    return outcome


def rejected(outcome: Outcome, *words: str) -> bool:
    return outcome.status == "rejected" and all(w in (outcome.reason or "") for w in words)


def fingerprint(steps: list[Step]) -> list[tuple[Any, ...]]:
    return [(t, e.channel, e.type, e.correlation_id, e.data.model_dump()) for t, e in steps]


# -- (a) determinism, (b) the contract ----------------------------------------------------------
def test_the_fleet_file_has_every_kind_with_a_behaviour(fleet: Fleet) -> None:
    assert {d.kind for d in fleet.devices} == set(KINDS)
    assert 20 <= len(fleet.devices) <= 30
    assert fleet.devices[0].kind == "gate"
    for d in fleet.devices:
        assert behaviour_for(d.kind).kind == d.kind
        assert all(rate >= 0 for rate in d.rates.values()), d.id


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_day_other_seed_other_day(kind: str) -> None:
    a = fingerprint(run(make(kind, seed=7), 24))
    assert a == fingerprint(run(make(kind, seed=7), 24))
    assert fingerprint(run(make(kind, seed=8), 24)) != a
    assert sum(1 for row in a if row[1] is Channel.EVENTS) > 10


# Rates that make every event type happen within the run: faults are rare on the real street.
BUSY: dict[str, dict[str, float]] = {
    "gate": {"camera_faults_per_day": 3},
    "medicine-cabinet": {
        "cooler_failures_per_day": 1,
        "door_jams_per_day": 1,
        "door_forced_per_day": 1,
        "restock_every_days": 4,
        "slots": 64,
    },
    "book-house": {"capacity": 5, "visits_per_hour": 20},
    "service-centre": {"kiosk_faults_per_day": 3},
    "school": {},
    "stereo": {"loud_share": 0.5},
    "property-app": {"dispatch_min": 300, "work_scale": 4},
}


# Expiry dates and overdue loans need weeks; a busy gate makes its every event in a day or two.
DAYS = {"gate": 2, "medicine-cabinet": 45, "book-house": 30, "service-centre": 3, "school": 3,
        "stereo": 3, "property-app": 5}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_every_emission_is_valid_and_every_event_type_happens(kind: str) -> None:
    spec = get_kind(kind)
    behaviour = make(kind, seed=3, more=BUSY[kind], telemetry_every_s=3600)
    steps = run(behaviour, 24 * DAYS[kind])
    seen: Counter[str] = Counter()
    for _, e in steps:
        validate_data(spec, e.channel, e.type, e.data.model_dump(mode="json", exclude_none=True))
        seen[e.type] += 1
    assert set(spec.events) <= set(seen), set(spec.events) - set(seen)
    # What the session publishes is what ingest accepts: the whole envelope, through the parser.
    for seq, (due, e) in enumerate(steps[:50]):
        env = Envelope(
            event_id=f"e{seq}", device_id=behaviour.spec.id, kind=kind, type=e.type, seq=seq,
            ts=due, correlation_id=e.correlation_id,
            data=e.data.model_dump(mode="json", exclude_none=True),
        )  # fmt: skip
        msg = parse_message(str(Topic(kind, behaviour.spec.id, e.channel)), dumps(env))
        assert msg.envelope is not None and msg.envelope.type == e.type


@pytest.mark.parametrize("kind", KINDS)
def test_residents_appear_only_as_pseudonyms(kind: str) -> None:
    spec = get_kind(kind)
    for _, e in events(run(make(kind, seed=5), 24)):
        data = e.data.model_dump(mode="json", exclude_none=True)
        for field in ("resident", "student", "guardian"):
            if field in data:
                assert data[field].startswith("r-") and len(data[field]) == 18
                assert e.type in spec.personal_events, (e.type, field)
        assert "name" not in json.dumps(data)


# -- (c) invariants over a long run, (d) the shape of the day ------------------------------------
def test_gate_falls_back_to_card_qr_pin_while_the_camera_is_down() -> None:
    steps = run(make("gate", seed=2, camera_faults_per_day=6, camera_repair_min=60), 48)
    down, fallback = False, 0
    for _, e in events(steps):
        if e.type in ("camera-fault", "camera-recovered"):
            assert down == (e.type == "camera-recovered"), "faults and recoveries alternate"
            down = e.type == "camera-fault"
        elif down and e.type in ("entry-granted", "entry-denied"):
            assert e.data.method != "face"  # type: ignore[attr-defined]
            fallback += 1
    assert fallback > 20
    faults = [t for t, e in events(steps, "camera-fault")]
    assert len(faults) >= 3


def test_cabinet_stock_never_negative_and_runs_down_until_restocked() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, MedicineCabinetBehaviour)
        assert all(0 <= s <= b.capacity for s in b.stock)
        assert -30 <= b.temperature <= 70 and 0 <= b.humidity <= 100

    cabinet = make("medicine-cabinet", seed=4, restock_every_days=5, dispenses_per_hour=6)
    steps = run(cabinet, 24 * 14, check)
    totals = [(t, sum(d.stock)) for t, d in telemetry(steps)]
    restocks = [t for t, _ in events(steps, "restocked")]
    assert 2 <= len(restocks) <= 3
    # Between restocks and expiries the cabinet only empties.
    changes = {t for t, _ in events(steps, "restocked", "item-expired")}
    for (t0, a), (t1, b) in pairwise(totals):
        if not any(t0 < c <= t1 for c in changes):
            assert b <= a
    outs = events(steps, "stock-out")
    assert outs, "an empty slot turns a request into stock-out, not a negative count"
    empty_slots = {e.data.slot for _, e in outs}  # type: ignore[attr-defined]
    assert empty_slots


def test_cabinet_warms_when_the_cooler_fails_and_holds_its_band_otherwise() -> None:
    calm = {"door_jams_per_day": 0.0, "door_forced_per_day": 0.0, "restock_every_days": 30.0}
    healthy = make("medicine-cabinet", seed=5, more=calm, cooler_failures_per_day=0)
    temps = [d.temperature_c for _, d in telemetry(run(healthy, 48))]
    assert all(1.5 <= t <= 8.5 for t in temps)
    broken = make("medicine-cabinet", seed=5, more=calm, cooler_failures_per_day=500,
                  cooler_repair_h=1000)  # fmt: skip
    steps = run(broken, 12)
    readings = telemetry(steps)
    failed_at = events(steps, "cooler-fault")[0][0]
    assert failed_at < START + timedelta(hours=1)
    later = [d for t, d in readings if t > failed_at + timedelta(hours=4)]
    assert later and all(d.cooler == "failed" and d.temperature_c > 8 for d in later)
    assert daily.ambient_c(START) > 8  # November in Chongqing: the room is warmer than the band
    assert events(steps, "temperature-excursion")
    rising = [
        d.temperature_c for t, d in readings if failed_at < t < failed_at + timedelta(hours=3)
    ]
    assert rising[-1] > rising[0] + 2


def test_cabinet_door_left_open_warms_and_alerts_once() -> None:
    cabinet = make("medicine-cabinet", seed=6, door_jams_per_day=200, door_jam_min=30,
                   cooler_failures_per_day=0, restock_every_days=30)  # fmt: skip
    steps = run(cabinet, 3)
    alerts = events(steps, "door-left-open")
    assert alerts and all(e.data.seconds >= 120 for _, e in alerts)  # type: ignore[attr-defined]
    assert max(d.temperature_c for _, d in telemetry(steps)) > 8


def test_book_house_occupancy_and_inventory_stay_physical() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, BookHouseBehaviour)
        assert 0 <= b.occupancy <= b.capacity
        assert len(b.departures) == b.occupancy
        assert len(b.shelf) + len(b.loans) == books

    house = make("book-house", seed=2, capacity=12, visits_per_hour=25)
    books = len(house.shelf) + len(house.loans)  # type: ignore[attr-defined]
    steps = run(house, 24 * 10, check)
    assert events(steps, "over-capacity")
    assert not set(house.shelf) & set(house.loans)  # type: ignore[attr-defined]
    for _, d in telemetry(steps):
        assert d.free_seats == d.capacity - d.occupancy >= 0
        assert 20 <= d.noise_db <= 90 and 15 <= d.temperature_c <= 30
    # A loan's events share one correlation id: borrowed first, then overdue and/or returned.
    chains: dict[str, list[str]] = defaultdict(list)
    for _, e in events(steps, "book-borrowed", "reservation-collected", "book-overdue",
                       "book-returned"):  # fmt: skip
        assert e.correlation_id
        chains[e.correlation_id].append(e.type)
    for chain in chains.values():
        assert chain.count("book-returned") <= 1 and chain.count("book-overdue") <= 1
        if chain[0] in ("book-borrowed", "reservation-collected"):
            assert "book-returned" not in chain[:-1]


def test_book_house_peaks_after_school_and_in_the_evening_and_weekends_are_busier() -> None:
    steps = run(make("book-house", seed=3), 24 * 14)
    by_hour: defaultdict[tuple[bool, int], list[int]] = defaultdict(list)
    for t, d in telemetry(steps):
        by_hour[(daily.is_weekend(t), hour(t))].append(d.occupancy)

    def mean(weekend: bool, hours: range) -> float:
        values = [v for h in hours for v in by_hour[(weekend, h)]]
        return sum(values) / len(values)

    assert mean(False, range(17, 18)) > 2 * mean(False, range(10, 11))
    assert mean(False, range(20, 21)) > 2 * mean(False, range(10, 11))
    assert mean(False, range(3, 5)) == 0
    assert mean(True, range(9, 22)) > 1.3 * mean(False, range(9, 22))


def test_service_centre_queue_is_served_in_order_and_peaks_at_lunch_and_after_work() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, ServiceCentreBehaviour)
        assert 0 <= len(b.queue) <= b.rate("max_queue", 30)
        busy = [i for i, f in enumerate(b.free_at) if f is not None]
        assert len(busy) <= len(b.open) and sum(b.open) <= len(b.open)

    steps = run(make("service-centre", seed=2), 24 * 5, check)  # Monday to Friday
    issued: dict[str, datetime] = {}
    served: set[str] = set()
    per_hour: Counter[int] = Counter()
    for t, e in events(steps):
        if e.type == "ticket-issued":
            assert e.correlation_id and e.correlation_id not in issued
            issued[e.correlation_id] = t
            per_hour[hour(t)] += 1
        elif e.type == "ticket-served":
            assert e.correlation_id in issued and e.correlation_id not in served
            served.add(e.correlation_id)
            wait = (t - issued[e.correlation_id]).total_seconds()
            assert e.data.wait_s == int(wait) >= 0  # type: ignore[attr-defined]
    assert len(issued) - len(served) <= 30
    queue = defaultdict(list)
    for t, d in telemetry(steps):
        assert d.counters_open <= d.counters and d.queue_length >= 0
        queue[hour(t)].append(d.queue_length)
    lunch, after_work = per_hour[12], per_hour[18]
    assert lunch > 1.5 * per_hour[15] and after_work > 1.5 * per_hour[15]
    assert max(queue[12]) > max(queue[15]) and max(queue[3]) == 0


def test_school_is_a_weekday_timetable() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, SchoolBehaviour)
        assert 0 <= b.present <= len(b.students) and b.present == sum(b.inside)

    steps = run(make("school", seed=4), 24 * 14, check)  # two full weeks from a Monday
    windows = {
        "student-arrived": daily.SCHOOL_ARRIVALS,
        "picked-up": daily.SCHOOL_PICKUPS,
        "student-departed": daily.SCHOOL_PICKUPS,
        "visitor-registered": daily.SCHOOL_DAY,
    }
    arrived: set[str] = set()
    days: set[int] = set()
    for t, e in events(steps):
        assert not daily.is_weekend(t), (t, e.type)
        assert windows[e.type].contains(t), (daily.local(t), e.type)
        days.add(daily.local(t).weekday())
        if e.type == "student-arrived":
            assert e.correlation_id not in arrived
            arrived.add(e.correlation_id or "")
        elif e.type != "visitor-registered":
            assert e.correlation_id in arrived, "nobody leaves who did not come that day"
    assert days == {0, 1, 2, 3, 4}
    for t, d in telemetry(steps):
        in_window = daily.SCHOOL_ARRIVALS.contains(t) or daily.SCHOOL_PICKUPS.contains(t)
        assert (d.gate == "open") == (in_window and not daily.is_weekend(t))
        if daily.local(t).time() >= time(17, 30) or daily.local(t).time() < time(7, 30):
            assert d.present == 0
        if daily.SCHOOL_DAY.contains(t) and not daily.is_weekend(t):
            assert d.present > 0.9 * d.enrolled


def test_school_started_during_lessons_already_has_its_pupils() -> None:
    school = make("school", seed=1, start=START + timedelta(hours=10))
    assert school.present > 500  # type: ignore[attr-defined]
    steps = run(school, 8)
    assert not events(steps, "student-arrived")
    assert len(events(steps, "picked-up", "student-departed")) == school.arrived_today  # type: ignore[attr-defined]


def test_stereo_violations_only_in_quiet_hours_and_evenings_are_busy() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, StereoBehaviour)
        assert 0 <= b.volume <= 100 and len(b.paired) <= b.rate("max_paired", 3)
        assert not b.playing or b.paired

    steps = run(make("stereo", seed=6, loud_share=0.5), 24 * 7, check)
    violations = events(steps, "quiet-hours-violation")
    assert violations
    for t, e in violations:
        assert daily.QUIET_HOURS.contains(t)
        assert e.data.volume > e.data.limit  # type: ignore[attr-defined]
    playing = False
    for _, e in events(steps, "track-started", "track-stopped"):
        assert playing == (e.type == "track-stopped"), "a track stops before the next starts"
        playing = e.type == "track-started"
    paired = Counter(hour(t) for t, _ in events(steps, "device-paired"))
    evening = sum(paired[h] for h in range(18, 22))
    daytime = sum(paired[h] for h in range(9, 17))
    assert evening > 2 * daytime
    assert sum(paired[h] for h in range(1, 5)) == 0


def test_property_requests_move_created_assigned_resolved_rated() -> None:
    def check(b: Behaviour) -> None:
        assert isinstance(b, PropertyAppBehaviour)
        assert all(r.status in ("created", "assigned", "resolved") for r in b.requests.values())

    steps = run(make("property-app", seed=2), 24 * 10, check)
    chains: dict[str, list[str]] = defaultdict(list)
    for _, e in events(steps):
        request_id = e.data.request_id  # type: ignore[attr-defined]
        assert e.correlation_id == request_id
        chains[request_id].append(e.type)
    order = {"request-created": 0, "request-assigned": 1, "request-escalated": 1,
             "request-resolved": 2, "request-rated": 3}  # fmt: skip
    for chain in chains.values():
        assert chain[0] == "request-created"
        assert [order[t] for t in chain] == sorted(order[t] for t in chain), chain
        assert chain.count("request-resolved") <= 1 and chain.count("request-rated") <= 1
        if "request-resolved" in chain:
            assert "request-assigned" in chain
    resolved = sum("request-resolved" in c for c in chains.values())
    assert resolved > 0.9 * len(chains)
    for _, d in telemetry(steps):
        assert 0 <= d.overdue_requests <= d.open_requests
        assert d.unassigned_requests <= d.open_requests


def test_property_noise_complaints_come_late_and_repairs_by_day() -> None:
    steps = run(make("property-app", seed=3, requests_per_hour=6), 24 * 14)
    by: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for t, e in events(steps, "request-created"):
        by[e.data.category][hour(t)] += 1  # type: ignore[attr-defined]
    late = range(20, 24)
    morning = range(8, 12)
    assert sum(by["noise"][h] for h in late) > 2 * sum(by["noise"][h] for h in morning)
    assert sum(by["repair"][h] for h in morning) > 5 * sum(by["repair"][h] for h in range(1, 5))


# -- (e) every command: done, and rejected with a reason ------------------------------------------
def test_gate_commands() -> None:
    gate = make("gate")
    assert isinstance(gate, GateBehaviour)
    assert command(gate, "open-once", START).status == "done"
    assert command(gate, "lock-down", START, reason="drill").status == "done"
    assert rejected(command(gate, "open-once", START), "locked down")
    assert command(gate, "release", START).status == "done"
    assert rejected(command(gate, "release", START), "not locked down")


def test_medicine_cabinet_commands() -> None:
    cabinet = make("medicine-cabinet", restock_every_days=30)
    assert isinstance(cabinet, MedicineCabinetBehaviour)
    now = START
    assert rejected(command(cabinet, "restock", now, slot=40), "no slot 40")
    done = command(cabinet, "restock", now)
    assert done.status == "done" and done.emissions[0].type == "restocked"
    assert all(s == cabinet.capacity for s in cabinet.stock)
    assert rejected(command(cabinet, "restock", now), "already full")
    assert rejected(command(cabinet, "restock", now, slot=2), "slot 2", "already full")
    cabinet.stock[1] = 3
    partial = command(cabinet, "restock", now, slot=2, quantity=5)
    assert partial.status == "done" and cabinet.stock[1] == 8

    assert rejected(command(cabinet, "unlock", now), "not locked")
    assert command(cabinet, "lock", now, reason="recall").status == "done"
    assert rejected(command(cabinet, "lock", now), "already locked")
    steps = run(cabinet, 6)
    assert not events(steps, "medicine-dispensed"), "a locked cabinet dispenses nothing"
    assert command(cabinet, "unlock", now + timedelta(hours=6)).status == "done"

    later = now + timedelta(hours=6)
    assert rejected(command(cabinet, "set-temperature-band", later, min_c=8, max_c=2), "max_c")
    band = command(cabinet, "set-temperature-band", later, min_c=2, max_c=6)
    assert band.status == "done"
    tele = band.emissions[-1].data
    assert (tele.band_min_c, tele.band_max_c) == (2, 6)  # type: ignore[attr-defined]


def test_book_house_commands() -> None:
    house = make("book-house", visits_per_hour=40)
    assert isinstance(house, BookHouseBehaviour)
    now = START + timedelta(hours=18)
    run(house, 18)
    assert house.occupancy > 0
    assert rejected(command(house, "open", now), "already open")
    closed = command(house, "close", now, reason="cleaning")
    assert closed.status == "done" and house.occupancy == 0
    assert closed.emissions[-1].data.open is False  # type: ignore[attr-defined]
    assert rejected(command(house, "close", now), "already closed")
    steps = run(house, 2)
    assert house.occupancy == 0 and not events(steps, "book-borrowed", "over-capacity")
    assert command(house, "open", now).status == "done"
    assert rejected(command(house, "lights-on", now), "already on")
    assert command(house, "lights-off", now).status == "done"
    assert rejected(command(house, "lights-off", now), "already off")
    assert command(house, "lights-on", now).status == "done"


def test_service_centre_commands() -> None:
    centre = make("service-centre", counters=4, counters_open=2, kiosks=3,
                  kiosk_faults_per_day=40, kiosk_repair_min=600)  # fmt: skip
    assert isinstance(centre, ServiceCentreBehaviour)
    now = START
    assert rejected(command(centre, "open-counter", now, counter=1), "counter 1", "already open")
    assert rejected(command(centre, "open-counter", now, counter=9), "no counter 9")
    assert command(centre, "open-counter", now).status == "done" and centre.open[2]
    assert command(centre, "open-counter", now, counter=4).status == "done"
    assert rejected(command(centre, "open-counter", now), "every counter")
    assert command(centre, "close-counter", now, counter=4).status == "done"
    assert rejected(command(centre, "close-counter", now, counter=4), "already closed")
    assert rejected(command(centre, "close-counter", now, counter=9), "no counter 9")

    assert rejected(command(centre, "reboot-kiosk", now, kiosk=7), "no kiosk 7")
    assert rejected(command(centre, "reboot-kiosk", now, kiosk=1), "working")
    # Let kiosks fail until one is down with a software fault and one with a hardware fault.
    software = hardware = None
    while software is None or hardware is None:
        now = centre.next_wakeup()
        assert now < START + timedelta(days=3)
        centre.wake(now)
        down = {k.reason: i + 1 for i, k in enumerate(centre.kiosks) if not k.ok}
        software = next((down[r] for r in SOFTWARE if r in down), None)
        hardware = next((down[r] for r in HARDWARE if r in down), None)
    reboot = command(centre, "reboot-kiosk", now, kiosk=software)
    assert reboot.status == "done" and reboot.emissions[0].type == "kiosk-recovered"
    assert reboot.emissions[0].data.by == "reboot"  # type: ignore[attr-defined]
    assert rejected(command(centre, "reboot-kiosk", now, kiosk=hardware), "technician")


def test_school_commands_and_a_lockdown_holds_pupils_at_the_gate() -> None:
    school = make("school")
    assert isinstance(school, SchoolBehaviour)
    seven = START + timedelta(hours=7)
    run(school, 7)
    assert rejected(command(school, "release", seven), "not locked down")
    opened = command(school, "open-gate", seven, minutes=10)
    assert opened.status == "done" and opened.emissions[-1].data.gate == "open"  # type: ignore[attr-defined]
    assert command(school, "lock-down", seven, reason="drill").status == "done"
    assert rejected(command(school, "lock-down", seven), "already locked down")
    assert rejected(command(school, "open-gate", seven), "locked down")
    steps = run(school, 2)  # through the arrival window
    assert not events(steps, "student-arrived")
    assert all(d.gate == "locked" for _, d in telemetry(steps))
    nine = START + timedelta(hours=9)
    released = command(school, "release", nine)
    assert released.status == "done"
    held = events(run(school, 1), "student-arrived")
    assert len(held) > 500 and all(t > nine for t, _ in held)


def test_stereo_commands() -> None:
    stereo = make("stereo", sessions_per_hour=6)
    assert isinstance(stereo, StereoBehaviour)
    steps = run(stereo, 19.5)
    now = steps[-1][0]
    if not stereo.playing:
        assert rejected(command(stereo, "stop", now), "nothing is playing")
        steps = run(stereo, 0.5)
        now = steps[-1][0]
    assert stereo.playing
    turned = command(stereo, "set-volume", now, volume=55)
    assert turned.status == "done" and stereo.volume == 55
    assert command(stereo, "set-volume", now, volume=55).emissions[0].type == "telemetry"
    # Quiet hours that start now: music at 55 is a violation at once.
    local_now = daily.local(now)
    start = f"{local_now.hour:02d}:00"
    end = f"{(local_now.hour + 2) % 24:02d}:00"
    assert rejected(command(stereo, "set-quiet-hours", now, start=start, end=start), "empty")
    quiet = command(stereo, "set-quiet-hours", now, start=start, end=end, max_volume=30)
    assert quiet.status == "done"
    assert [e.type for e in quiet.emissions] == ["quiet-hours-violation", "volume-changed",
                                                 "telemetry"]  # fmt: skip
    assert rejected(command(stereo, "set-volume", now, volume=80), "quiet hours", "30")
    stopped = command(stereo, "stop", now)
    assert stopped.status == "done"
    assert [e.type for e in stopped.emissions][:2] == ["track-stopped", "device-unpaired"]
    assert rejected(command(stereo, "stop", now), "nothing is playing")


def test_property_app_commands() -> None:
    app = make("property-app", dispatch_min=600)
    assert isinstance(app, PropertyAppBehaviour)
    steps = run(app, 12)
    waiting = [r for r in app.requests.values() if r.status == "created" and r.level == 0]
    assert waiting
    request_id = waiting[0].request_id
    now = steps[-1][0]
    assert rejected(command(app, "resolve", now, request_id="nope-1"), "unknown request")
    assert rejected(command(app, "assign", now, request_id="nope-1", staff="staff-01"),
                    "unknown request")  # fmt: skip
    assert rejected(command(app, "resolve", now, request_id=request_id), "not assigned")
    assigned = command(app, "assign", now, request_id=request_id, staff="staff-07")
    assert assigned.status == "done"
    event = assigned.emissions[0]
    assert event.type == "request-assigned" and event.correlation_id == request_id
    assert rejected(command(app, "assign", now, request_id=request_id, staff="staff-07"),
                    "already assigned")  # fmt: skip
    for level in (1, 2, 3):
        up = command(app, "escalate", now, request_id=request_id)
        assert up.status == "done" and up.emissions[0].data.level == level  # type: ignore[attr-defined]
    assert rejected(command(app, "escalate", now, request_id=request_id), "level 3")
    assert command(app, "resolve", now, request_id=request_id).status == "done"
    assert rejected(command(app, "resolve", now, request_id=request_id), "already resolved")
    assert rejected(command(app, "escalate", now, request_id=request_id), "already resolved")
    # The stale dispatcher and work timers of the resolved request stay silent.
    later = run(app, 24)
    assert not [e for _, e in events(later) if e.correlation_id == request_id
                and e.type != "request-rated"]  # fmt: skip


def test_unknown_command_is_rejected_by_every_kind() -> None:
    class Other(BaseModel):
        pass

    for kind in KINDS:
        behaviour = make(kind)
        outcome = behaviour.handle(Command(command_id="x", name="dance"), Other(), START)
        assert rejected(outcome, "unsupported command dance"), kind
