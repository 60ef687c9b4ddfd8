"""The MQTT topic tree: the only module that builds or parses a topic string."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "lijia"
# Topic levels are restricted so that ids never smuggle MQTT wildcards or separators.
LEVEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class Channel(StrEnum):
    """What a topic carries. QoS, retain and direction are fixed per channel (see CHANNEL_RULES)."""

    EVENTS = "events"
    TELEMETRY = "telemetry"
    STATE = "state"
    COMMANDS = "commands"
    COMMAND_RESULTS = "command-results"


@dataclass(frozen=True)
class ChannelRule:
    qos: int
    retained: bool
    publisher: str  # "device" or "backend"
    meaning: str


CHANNEL_RULES: dict[Channel, ChannelRule] = {
    Channel.EVENTS: ChannelRule(1, False, "device", "things that happened (envelope)"),
    Channel.TELEMETRY: ChannelRule(1, False, "device", "periodic measurements (envelope)"),
    Channel.STATE: ChannelRule(
        1, True, "device", "availability online/offline; also the Last Will"
    ),
    Channel.COMMANDS: ChannelRule(1, False, "backend", "operator commands to one device"),
    Channel.COMMAND_RESULTS: ChannelRule(
        1, False, "device", "accepted / rejected / done for each command (envelope)"
    ),
}

# Channels whose payload is an Envelope with a per-device sequence number.
ENVELOPE_CHANNELS = frozenset({Channel.EVENTS, Channel.TELEMETRY, Channel.COMMAND_RESULTS})


class TopicError(ValueError):
    """A topic that is not part of the Lijia Street tree."""


def check_level(value: str, what: str) -> str:
    if not LEVEL_RE.match(value):
        raise TopicError(f"{what} must match {LEVEL_RE.pattern}")
    return value


@dataclass(frozen=True)
class Topic:
    """`lijia/{kind}/{device_id}/{channel}`."""

    kind: str
    device_id: str
    channel: Channel

    def __str__(self) -> str:
        check_level(self.kind, "kind")
        check_level(self.device_id, "device_id")
        return f"{ROOT}/{self.kind}/{self.device_id}/{self.channel.value}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != ROOT:
            raise TopicError("topic is not lijia/{kind}/{device_id}/{channel}")
        _, kind, device_id, channel = parts
        try:
            ch = Channel(channel)
        except ValueError as exc:
            raise TopicError("unknown channel") from exc
        return cls(check_level(kind, "kind"), check_level(device_id, "device_id"), ch)


def subscription(channel: Channel, kind: str = "+", device_id: str = "+") -> str:
    """A subscription filter for one channel (wildcards allowed in kind and device id)."""
    return f"{ROOT}/{kind}/{device_id}/{channel.value}"


def shared(group: str, topic_filter: str) -> str:
    """MQTT v5 shared subscription, so several backend replicas split the load."""
    return f"$share/{check_level(group, 'group')}/{topic_filter}"
