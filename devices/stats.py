"""What a fleet's device sessions count together: connections, publishes, backlog, refusals."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FleetStats:
    connected: int = 0
    # Sessions whose first connection attempt has an answer (CONNACK, refusal or socket error).
    settled: int = 0
    published: int = 0
    events: int = 0  # of `published`, on the events channel
    commands: int = 0
    errors: int = 0
    # Publishes of online devices not yet acknowledged by the broker (the runner's back-pressure).
    backlog: int = 0
    # Publishes of devices away from the broker (a drill's outage, reconnecting), kept for their
    # return: at max the runner waits for them only once they hold many (devices/runner.py).
    held: int = 0
    # Emissions of devices the broker refuses (bad credentials): never queued, so never piled up.
    dropped: int = 0
    # Acknowledged messages published again after a reconnect (devices/outbox.py).
    resent: int = 0
    refused: set[str] = field(default_factory=set)
