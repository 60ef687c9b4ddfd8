"""Classify one incoming message: raw topic and bytes become a typed device message, or a
contract error naming why it is refused. Pure: no database, no broker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from backend.ingest.skew import SkewWatch
from contracts.clock import ClockState, street_now
from contracts.envelope import Availability
from contracts.topics import Channel, Topic, TopicError
from contracts.validation import ContractError, DeviceMessage, parse_message

# Reasons of this module's refusals (dead_letters.py keeps them; the code before ":" is counted).
RETAINED = "retained: only the state channel may be retained; the broker's copy is cleared"
# What a device says of itself on `state`: `online` only as `connected`, `offline` only as
# `clean-shutdown` or `last-will` (contracts/envelope.py, Availability).
STATE_REASONS = {"online": {"connected"}, "offline": {"clean-shutdown", "last-will"}}


@dataclass(frozen=True)
class Incoming:
    """One message as it came off the wire; mid/qos are what we acknowledge after commit.
    `clock` is the street's clock the backend followed when it arrived (None: no simulator,
    street time is wall time); `received_at` is wall time."""

    topic: str
    payload: bytes
    received_at: datetime
    retained: bool = False
    mid: int = 0
    qos: int = 0
    clock: ClockState | None = None

    @property
    def street_at(self) -> datetime:
        """The street's time when the message arrived."""
        return street_now(self.clock, self.received_at)


@dataclass(eq=False)
class Rules:
    """What a message must satisfy beyond its own contract: a provisioned device of that kind,
    a plausible clock, nothing retained but state."""

    kinds: dict[str, str] = field(default_factory=dict)  # provisioned device id -> kind
    # With MQTT 5 the ingest subscription asks for retainAsPublished (subscriber.py), so every
    # message carries its publisher's retain flag. MQTT 3.1.1 shows the flag only on delivery
    # at subscribe time, and the embedded fallback broker (amqtt, 3.1.1) also marks queued
    # messages as retained when it delivers them after a reconnect: there the flag means
    # nothing and the check is off (a retained event is then stored like any other).
    reject_retained: bool = True
    # Device clocks implausibly far from street time are refused (see `implausible`).
    max_clock_skew_s: float | None = None
    # Beyond this skew the device's twin is flagged (the message is still stored).
    clock_skew_flag_s: float | None = None
    skew: SkewWatch | None = None

    def __post_init__(self) -> None:
        if self.clock_skew_flag_s is not None and self.skew is None:
            self.skew = SkewWatch(self.clock_skew_flag_s)


# No street is set before this year (the API's street days and times start there too).
MIN_STREET_YEAR = 2000


def implausible(ts: datetime, item: Incoming, limit_s: float) -> float | None:
    """How far a device's time is outside what any clock of the street allows (None: within).
    The window is wide on purpose: street time and wall time both (the backend may not have
    followed a simulator's announcement yet), the street's start (a backlog at 60x can be days
    old in street time) and a jump under way. It refuses garbage (1970, next month), not skew:
    skew is flagged, not refused (backend/ingest/skew.py)."""
    limit = timedelta(seconds=limit_s)
    street, wall, clock = item.street_at, item.received_at, item.clock
    low = min(street, wall, clock.start if clock is not None else wall) - limit
    high = max(street, wall, (clock.jumping_to if clock else None) or wall) + limit
    if ts > high:
        return (ts - max(street, wall)).total_seconds()
    if ts < low:
        return (ts - min(street, wall)).total_seconds()
    return None


class RetainedError(ContractError):
    """A retained message on a channel that is never retained: refused, and the broker's
    retained copy is to be cleared."""

    def __init__(self) -> None:
        super().__init__(RETAINED)


def channel_of(topic: str) -> Channel | None:
    try:
        return Topic.parse(topic).channel
    except TopicError:
        return None  # parse_message says why


def is_clear(item: Incoming) -> bool:
    """An empty retained message: someone (we, or the device) cleared a retained copy. Nothing
    to store and nothing wrong: it is acknowledged and counted, never dead-lettered."""
    return item.retained and not item.payload


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ContractError("invalid-availability: duplicate key")
    return dict(pairs)


def check_state(item: Incoming, availability: Availability, rules: Rules) -> None:
    """A `state` payload becomes availability only if it is exactly the contract's: parse_message
    accepts what pydantic coerces (a number or a numeric string as `ts`) and JSON's last-wins
    duplicate keys; availability must not come from either, nor from a status its reason
    contradicts, nor from a time no clock of the street allows."""
    json.loads(item.payload, object_pairs_hook=_no_duplicate_keys)
    try:
        Availability.model_validate_json(item.payload, strict=True)
    except ValidationError as exc:
        fields = ",".join(sorted({".".join(map(str, e["loc"])) or "(root)" for e in exc.errors()}))
        raise ContractError(f"invalid-availability: {fields[:200]}") from None
    if availability.reason not in STATE_REASONS[availability.status]:
        raise ContractError("invalid-availability: reason contradicts status")
    if availability.ts is not None and rules.max_clock_skew_s is not None:
        skew = implausible(availability.ts, item, rules.max_clock_skew_s)
        # A retained availability is as old as the device's connection: a device online for a
        # week is handed to every new subscription with last week's time. Only a time before
        # any street (before 2000) or ahead of every clock is garbage there.
        old_retained = item.retained and skew is not None and skew < 0
        if skew is not None and not (old_retained and availability.ts.year >= MIN_STREET_YEAR):
            raise ContractError(f"clock-skew: device time is {skew:+.0f} s from ours")


def classify(item: Incoming, rules: Rules) -> DeviceMessage:
    """The typed message, or ContractError (its reason starts with a short code)."""
    if rules.reject_retained and item.retained:
        channel = channel_of(item.topic)
        # Judged before the payload: a retained copy on these channels is refused (and cleared)
        # whatever it holds, garbage included.
        if channel is not None and channel is not Channel.STATE:
            raise RetainedError()
    msg = parse_message(item.topic, item.payload)
    if msg.availability is not None:
        check_state(item, msg.availability, rules)
    env = msg.envelope
    if env is not None and rules.max_clock_skew_s is not None:
        skew = implausible(env.ts, item, rules.max_clock_skew_s)
        if skew is not None:
            raise ContractError(f"clock-skew: device time is {skew:+.0f} s from ours")
    registered = rules.kinds.get(msg.topic.device_id)
    if registered is None:
        raise ContractError("unknown-device: not provisioned in the fleet")
    if registered != msg.topic.kind:
        raise ContractError("kind-mismatch: device is registered as another kind")
    return msg
