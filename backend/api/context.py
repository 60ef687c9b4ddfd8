"""What the API's routes share: settings, database engine, ingest and outgoing MQTT sessions,
the street's clock."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from backend.alarms import AlarmEngine
from backend.config import Settings
from backend.ingest import Ingest
from backend.live import Broadcaster
from backend.publisher import Publisher
from backend.street_clock import StreetClock


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    ingest: Ingest
    publisher: Publisher
    alarms: AlarmEngine
    live: Broadcaster
    clock: StreetClock
