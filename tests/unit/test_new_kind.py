"""An eighth kind defined only here (a parcel locker) works end to end with no edit elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from pydantic import BaseModel, Field

from contracts.catalogue import CATALOGUE, KindSpec, get_kind, load_builtin_kinds, register_kind
from contracts.docs import render
from contracts.envelope import COMMAND_RESULT_TYPE, Command, ResidentRef, WireModel
from contracts.fleet import parse_fleet
from contracts.text import Text
from contracts.topics import Channel, Topic
from contracts.validation import ContractError, parse_message
from devices import daily
from devices.behaviour import Behaviour, Emission, Outcome
from devices.clock import SimClock
from devices.kinds import BEHAVIOURS, behaviour_for, register
from devices.loop import MqttLoop
from devices.population import Population
from devices.runner import device_rng
from devices.session import BrokerAddress, DeviceSession
from devices.stats import FleetStats

KIND = "parcel-locker"
START = datetime(2026, 11, 23, tzinfo=UTC) - daily.CHINA  # Monday 00:00 in Chongqing
LOCKERS = 24


# -- the contract: what `contracts/kinds/parcel_locker.py` would hold ----------------------------
class ParcelDelivered(WireModel):
    """A courier put a parcel in a locker for a resident."""

    locker: int = Field(ge=1, le=LOCKERS)
    resident: ResidentRef


class ParcelCollected(WireModel):
    locker: int = Field(ge=1, le=LOCKERS)
    resident: ResidentRef


class LockerTelemetry(WireModel):
    occupied: int = Field(ge=0, le=LOCKERS)
    free: int = Field(ge=0, le=LOCKERS)


class OpenLocker(WireModel):
    locker: int = Field(ge=1, le=LOCKERS)


SPEC = KindSpec(
    kind=KIND,
    label=Text("Smart parcel locker", "智能快递柜"),
    events={"parcel-delivered": ParcelDelivered, "parcel-collected": ParcelCollected},
    telemetry=LockerTelemetry,
    commands={"open-locker": OpenLocker},
    personal_events=frozenset({"parcel-delivered", "parcel-collected"}),
)


# -- the behaviour: what `devices/kinds/parcel_locker.py` would hold ------------------------------
class ParcelLockerBehaviour(Behaviour):
    kind = KIND

    def start(self, now: datetime) -> None:
        self.parcels: dict[int, str] = {}
        # Couriers follow the street's day like everyone else.
        self.deliveries = daily.Arrivals(
            self.rng, self.rate("parcels_per_hour", 6), daily.GATE, now
        )
        self.next_telemetry = now

    def next_wakeup(self) -> datetime:
        return min(self.deliveries.due, self.next_telemetry)

    def wake(self, now: datetime) -> list[Emission]:
        out: list[Emission] = []
        if now >= self.deliveries.due and self.deliveries.fire(now):
            free = [n for n in range(1, LOCKERS + 1) if n not in self.parcels]
            if free:
                locker = self.rng.choice(free)
                self.parcels[locker] = self.population.pick(self.rng)
                data = ParcelDelivered(locker=locker, resident=self.parcels[locker])
                out.append(Emission(Channel.EVENTS, "parcel-delivered", data, f"p-{locker}"))
        if now >= self.next_telemetry:
            out.append(self._telemetry())
            self.next_telemetry = now + timedelta(minutes=5)
        return out

    def _telemetry(self) -> Emission:
        occupied = len(self.parcels)
        data = LockerTelemetry(occupied=occupied, free=LOCKERS - occupied)
        return Emission(Channel.TELEMETRY, "telemetry", data)

    def handle(self, command: Command, params: BaseModel, now: datetime) -> Outcome:
        if not isinstance(params, OpenLocker):
            return Outcome.rejected(f"unsupported command {command.name}")
        resident = self.parcels.pop(params.locker, None)
        if resident is None:
            return Outcome.rejected(f"locker {params.locker} is empty")
        data = ParcelCollected(locker=params.locker, resident=resident)
        collected = Emission(Channel.EVENTS, "parcel-collected", data, f"p-{params.locker}")
        return Outcome.done((collected, self._telemetry()))


@pytest.fixture
def parcel_locker() -> Iterator[KindSpec]:
    load_builtin_kinds()  # the built-in kinds first, as any process would have them
    spec = register_kind(SPEC)
    register(ParcelLockerBehaviour)
    yield spec
    # Nobody else may see the eighth kind: unregister it from both registries.
    CATALOGUE.pop(KIND, None)
    BEHAVIOURS.pop(KIND, None)
    with pytest.raises(ContractError, match="unknown-kind"):
        parse_message(f"lijia/{KIND}/locker-1/events", b"{}")


class Recorder:
    """Stands in for the broker: what the device session would publish, by topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, session: DeviceSession) -> None:
        def record(channel: Channel, payload: bytes) -> mqtt.MQTTMessageInfo:
            self.sent.append((str(session.topic(channel)), payload))
            info = mqtt.MQTTMessageInfo(len(self.sent))
            info.rc = mqtt.MQTT_ERR_SUCCESS
            return info

        session._publish = record  # type: ignore[method-assign]


def test_an_eighth_kind_validates_and_runs_without_edits_elsewhere(parcel_locker: KindSpec) -> None:
    assert get_kind(KIND) is parcel_locker
    assert KIND in load_builtin_kinds()
    assert f"### `{KIND}`: Smart parcel locker · 智能快递柜" in render()
    assert parcel_locker.json_schemas()["commands"]["open-locker"]["required"] == ["locker"]

    # The fleet file and the runner's construction, exactly as for a built-in kind.
    fleet = parse_fleet({"devices": [{
        "id": "locker-1", "kind": KIND, "name_en": "Parcel Locker, Lijia Garden",
        "name_zh": "礼嘉花园智能快递柜", "position": {"x": 240, "y": 160},
        "rates": {"parcels_per_hour": 8},
    }]})  # fmt: skip
    spec = fleet.devices[0]
    behaviour = behaviour_for(spec.kind)(spec, device_rng(fleet.seed, spec.id), Population(50, 1))
    assert isinstance(behaviour, ParcelLockerBehaviour)

    # The real device session wraps the emissions; ingest's parser accepts every one of them.
    session = DeviceSession(behaviour, "secret", MqttLoop(), SimClock(START), BrokerAddress(),
                            FleetStats())  # fmt: skip
    recorder = Recorder()
    recorder.publish(session)
    behaviour.start(START)
    end = START + timedelta(hours=24)
    while behaviour.next_wakeup() < end:
        due = behaviour.next_wakeup()
        for emission in behaviour.wake(due):
            session.emit(emission, due)
    parsed = [parse_message(topic, payload) for topic, payload in recorder.sent]
    types = [m.envelope.type for m in parsed if m.envelope is not None]
    assert types.count("telemetry") == 24 * 12
    assert 0 < types.count("parcel-delivered") <= LOCKERS
    assert [m.envelope.seq for m in parsed if m.envelope] == list(range(len(parsed)))

    # A command from the backend: validated against the new kind's model, handled, answered.
    locker = next(iter(behaviour.parcels))
    for name, params in (("open-locker", {"locker": locker}), ("open-locker", {"locker": locker}),
                         ("open-locker", {"locker": 99}), ("fly", {})):  # fmt: skip
        msg = mqtt.MQTTMessage(topic=str(Topic(KIND, spec.id, Channel.COMMANDS)).encode())
        msg.payload = Command(name=name, params=params).model_dump_json().encode()
        session._on_command(session.client, None, msg)
    results = []
    for topic, payload in recorder.sent[len(parsed) :]:
        envelope = parse_message(topic, payload).envelope
        assert envelope is not None
        if envelope.type == COMMAND_RESULT_TYPE:
            results.append((envelope.data["status"], envelope.data.get("reason")))
        elif envelope.type == "parcel-collected":
            assert envelope.data["locker"] == locker
    assert results == [
        ("accepted", None), ("done", None),
        ("accepted", None), ("rejected", f"locker {locker} is empty"),
        ("rejected", "invalid parameters"),
        ("rejected", "unknown command fly"),
    ]  # fmt: skip
    assert session.stats.errors == 0
    session.client.disconnect()
    json.dumps(parcel_locker.json_schemas())  # the console's forms are built from these
