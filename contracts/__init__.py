"""The wire contract shared by devices, backend and console: topics, envelope, kinds (no I/O)."""

from contracts.catalogue import CATALOGUE, KindSpec, get_kind, register_kind
from contracts.envelope import (
    SCHEMA_VERSION,
    Availability,
    Command,
    CommandResult,
    Envelope,
)
from contracts.text import Text
from contracts.topics import Channel, Topic

__all__ = [
    "CATALOGUE",
    "SCHEMA_VERSION",
    "Availability",
    "Channel",
    "Command",
    "CommandResult",
    "Envelope",
    "KindSpec",
    "Text",
    "Topic",
    "get_kind",
    "register_kind",
]
