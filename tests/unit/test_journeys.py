"""Linked journeys, purely (no MQTT): one resident through several kinds under one id."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.fleet import load_fleet
from contracts.catalogue import get_kind
from contracts.fleet import Fleet
from contracts.topics import Channel
from contracts.validation import validate_data
from contracts.vocabulary import STREET_TZ
from devices import daily
from devices.kinds.book_house import BookHouseBehaviour
from devices.kinds.medicine_cabinet import MedicineCabinetBehaviour
from devices.street import Street

MONDAY = datetime(2026, 11, 23, tzinfo=STREET_TZ).astimezone(UTC)  # 00:00 in Chongqing
ROUTE = ("gate", "book-house", "medicine-cabinet", "property-app")


def day_on_the_street(fleet: Fleet, seed: int, hours: float = 24) -> tuple[Street, list[Any]]:
    street = Street(fleet, seed)
    street.start(MONDAY)
    steps = [
        (street.specs[i].id, street.specs[i].kind, ts, e)
        for i, ts, e in street.run(MONDAY + timedelta(hours=hours))
    ]
    return street, steps


def light(fleet: Fleet) -> Fleet:
    """The street with a tenth of the gate traffic and sparse telemetry: journeys (their rate
    and their gates' shares) stay as they are, the tests run faster."""
    devices = []
    for d in fleet.devices:
        rates = {**d.rates, "telemetry_every_s": 900}
        if d.kind == "gate":
            rates["arrivals_per_hour"] = d.rates["arrivals_per_hour"] / 10
        devices.append(d.model_copy(update={"rates": rates}))
    return fleet.model_copy(update={"devices": devices})


def journeys(steps: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for device_id, kind, ts, e in steps:
        if e.correlation_id and e.correlation_id.startswith("journey-"):
            out[e.correlation_id].append((ts, device_id, kind, e))
    return out


def fingerprint(steps: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (device_id, ts, e.channel, e.type, e.correlation_id, e.data.model_dump())
        for device_id, _, ts, e in steps
    ]


def test_a_journey_links_gate_book_medicine_and_request(fleet: Fleet) -> None:
    assert fleet.journeys_per_hour > 0  # on in the street as shipped
    street, steps = day_on_the_street(fleet, seed=5)
    trips = journeys(steps)
    assert len(trips) == street.journeys_started > 50  # about 8 an hour on a weekday
    complete = 0
    for correlation_id, events in trips.items():
        spec_of = {kind: get_kind(kind) for _, _, kind, _ in events}
        for _, _, kind, e in events:  # valid on the wire, like any other emission
            validate_data(spec_of[kind], e.channel, e.type, e.data.model_dump(mode="json"))
        first: dict[str, tuple[datetime, str, Any]] = {}
        for ts, device_id, kind, e in events:
            first.setdefault(kind, (ts, device_id, e))
        if len(first) < 3:
            continue  # a full book house or a closed one: the rest of the walk still happened
        complete += 1
        kinds = [k for k in ROUTE if k in first]
        assert kinds[0] == "gate", (correlation_id, kinds)
        # Different devices of different kinds, in the route's order, minutes apart.
        assert len({first[k][1] for k in kinds}) == len(kinds)
        times = [first[k][0] for k in kinds]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(timedelta(minutes=3) < g < timedelta(hours=2) for g in gaps), gaps
        # One resident all along (gate decision, loan, dispensing, request).
        residents = {
            first[k][2].data.resident
            for k in kinds
            if getattr(first[k][2].data, "resident", None) is not None
        }
        assert len(residents) == 1, (correlation_id, residents)
        gate = first["gate"][2]
        assert gate.type in ("entry-granted", "entry-denied")
    assert complete >= 0.9 * len(trips)


def test_journeys_follow_the_day_and_the_configured_rate(fleet: Fleet) -> None:
    fleet = light(fleet)
    _, steps = day_on_the_street(fleet, seed=6)
    starts = Counter(
        daily.local(min(ts for ts, *_ in events)).hour for events in journeys(steps).values()
    )
    night = sum(starts[h] for h in range(0, 6))
    evening = sum(starts[h] for h in range(17, 20))
    assert night == 0 and evening > 15, starts
    quiet = fleet.model_copy(update={"journeys_per_hour": 0.0})
    assert journeys(day_on_the_street(quiet, seed=6)[1]) == {}
    busy = fleet.model_copy(update={"journeys_per_hour": 4 * fleet.journeys_per_hour})
    assert len(journeys(day_on_the_street(busy, seed=6)[1])) > 2.5 * len(journeys(steps))


def test_journeys_are_deterministic_with_the_seed(fleet: Fleet) -> None:
    a = fingerprint(day_on_the_street(fleet, seed=9, hours=10)[1])
    b = fingerprint(day_on_the_street(fleet, seed=9, hours=10)[1])
    assert a == b
    assert any(row[4] and row[4].startswith("journey-") for row in a)
    assert fingerprint(day_on_the_street(fleet, seed=10, hours=10)[1]) != a


def test_journeys_keep_every_kinds_books(fleet: Fleet) -> None:
    """A book borrowed on a journey leaves the shelf like any other; stock never goes below 0;
    the telemetry agrees with the state; a journey loan comes back under the journey's id."""
    street, steps = day_on_the_street(light(fleet), seed=11, hours=48)
    books = {
        i: b.rate("books", 3000) for i, b in enumerate(street.behaviours) if b.kind == "book-house"
    }
    for i, total in books.items():
        house = street.behaviours[i]
        assert isinstance(house, BookHouseBehaviour)
        assert len(house.shelf) + len(house.loans) == int(total)
        assert set(house.journey_loans) <= {loan for loan, _, _ in house.loans.values()}
    for b in street.behaviours:
        if isinstance(b, MedicineCabinetBehaviour):
            assert all(0 <= s <= b.capacity for s in b.stock)
    loans: dict[tuple[str, str], str] = {}
    journey_returns = 0
    for device_id, kind, _, e in steps:
        if kind != "book-house":
            continue
        key = (device_id, getattr(e.data, "book_id", ""))
        if e.type in ("book-borrowed", "reservation-collected"):
            loans[key] = e.correlation_id
        elif e.type == "book-returned" and key in loans:
            assert e.correlation_id == loans.pop(key)  # the loan is followed by one id
            journey_returns += e.correlation_id.startswith("journey-")
    assert journey_returns > 0


@pytest.mark.parametrize("size", [7, 24, 100])
def test_journeys_on_streets_of_any_size(fleet: Fleet, size: int) -> None:
    street = Street(load_fleet(size=size), fleet.seed)
    street.start(MONDAY + timedelta(hours=17))
    kinds_seen: dict[str, set[str]] = defaultdict(set)
    for i, _, e in street.run(MONDAY + timedelta(hours=20)):
        if e.channel is Channel.EVENTS and (e.correlation_id or "").startswith("journey-"):
            kinds_seen[e.correlation_id or ""].add(street.specs[i].kind)
    if size == 7:  # only gates: a journey is just the way in
        assert kinds_seen and all(k == {"gate"} for k in kinds_seen.values())
    else:
        assert max(len(k) for k in kinds_seen.values()) == 4
