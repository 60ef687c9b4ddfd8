"""Classify one incoming message: raw topic and bytes become a typed device message, or a
contract error naming why it is refused. Pure: no database, no broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backend.ingest.skew import SkewWatch
from contracts.clock import ClockState, street_now
from contracts.validation import ContractError, DeviceMessage, parse_message


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
    # The embedded fallback broker (amqtt) marks queued messages as retained when it
    # delivers them after a reconnect, so the retained check only holds with Mosquitto.
    reject_retained: bool = True
    # Device clocks implausibly far from street time are refused (see `implausible`).
    max_clock_skew_s: float | None = None
    # Beyond this skew the device's twin is flagged (the message is still stored).
    clock_skew_flag_s: float | None = None
    skew: SkewWatch | None = None

    def __post_init__(self) -> None:
        if self.clock_skew_flag_s is not None and self.skew is None:
            self.skew = SkewWatch(self.clock_skew_flag_s)


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


def classify(item: Incoming, rules: Rules) -> DeviceMessage:
    """The typed message, or ContractError (its reason starts with a short code)."""
    msg = parse_message(item.topic, item.payload)
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
    if rules.reject_retained and item.retained and msg.envelope is not None:
        raise ContractError("retained-not-allowed: only the state channel is retained")
    return msg
