"""Classify one incoming message: raw topic and bytes become a typed device message, or a
contract error naming why it is refused. Pure: no database, no broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.validation import ContractError, DeviceMessage, parse_message


@dataclass(frozen=True)
class Incoming:
    """One message as it came off the wire; mid/qos are what we acknowledge after commit."""

    topic: str
    payload: bytes
    received_at: datetime
    retained: bool = False
    mid: int = 0
    qos: int = 0


@dataclass(eq=False)
class Rules:
    """What a message must satisfy beyond its own contract: a provisioned device of that kind,
    a plausible clock, nothing retained but state."""

    kinds: dict[str, str] = field(default_factory=dict)  # provisioned device id -> kind
    # The embedded fallback broker (amqtt) marks queued messages as retained when it
    # delivers them after a reconnect, so the retained check only holds with Mosquitto.
    reject_retained: bool = True
    # Accelerated simulations run device clocks ahead on purpose; they turn this off.
    max_clock_skew_s: float | None = None
    # Beyond this skew the device's twin is flagged (the message is still stored).
    clock_skew_flag_s: float | None = None


def classify(item: Incoming, rules: Rules) -> DeviceMessage:
    """The typed message, or ContractError (its reason starts with a short code)."""
    msg = parse_message(item.topic, item.payload)
    env = msg.envelope
    if env is not None and rules.max_clock_skew_s is not None:
        skew = (env.ts - item.received_at).total_seconds()
        if abs(skew) > rules.max_clock_skew_s:
            raise ContractError(f"clock-skew: device time is {skew:+.0f} s from ours")
    registered = rules.kinds.get(msg.topic.device_id)
    if registered is None:
        raise ContractError("unknown-device: not provisioned in the fleet")
    if registered != msg.topic.kind:
        raise ContractError("kind-mismatch: device is registered as another kind")
    if rules.reject_retained and item.retained and msg.envelope is not None:
        raise ContractError("retained-not-allowed: only the state channel is retained")
    return msg
