"""Backend settings (env prefix LIJIA_), read through get_settings() so tests can pass values."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters import credentials
from adapters.fleet import DEFAULT_FLEET

Scope = Literal["read", "operate", "admin"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIJIA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/lijia.db"
    fleet_file: Path = DEFAULT_FLEET
    # LIJIA_FLEET_SIZE: the street as `Fleet.scaled(N)`, as the simulator and the credentials
    # see it (`--devices N`); unset: the fleet file's devices.
    fleet_size: int | None = Field(default=None, ge=1)

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # "5" (persistent session with expiry, shared subscriptions) or "3.1.1" (embedded broker).
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_username: str = "backend"
    # Empty: read the backend's password from the credentials folder.
    mqtt_password: SecretStr = SecretStr("")
    credentials_dir: Path = Path("var/credentials")
    # Fixed, so the broker keeps our queued messages while we are away. Empty: `backend:ingest`
    # (one per host when sharing, so `docker compose up --scale backend=3` needs no per-replica
    # env). Client ids are public; a `:` keeps them apart from every device id.
    ingest_client_id: str = ""
    session_expiry_s: int = 7 * 24 * 3600
    # Set to share the ingest load between replicas ($share/<group>/...), MQTT 5 only.
    share_group: str | None = None

    # Device times further than this outside every clock of the street (street time, wall time,
    # the street's start: backend/ingest/classify.py) are refused ("clock-skew"); 0: no check.
    max_clock_skew_s: float = 24 * 3600.0
    # Device clocks further than this (street seconds) from street time are stored and flagged
    # on the twin (`clock_skewed`), at any speed; a backlog is told apart (ingest/skew.py).
    clock_skew_flag_s: float = 120.0
    # Ingest is "degraded" in /health while its oldest uncommitted message is older than this.
    degraded_lag_s: float = 10.0
    mqtt_keepalive_s: int = 30

    ingest_batch_max: int = 1000
    ingest_batch_wait_s: float = 0.05
    ingest_queue_max: int = 20_000

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # key -> scope. Empty means writes are refused (no key matches). Keys are never logged.
    api_keys: dict[str, Scope] = Field(default_factory=dict)
    command_timeout_s: float = 30.0
    # A device offline this long raises the generic device-offline alarm.
    offline_alarm_after_s: float = 300.0
    # An "online" device silent this long is marked offline with reason "silent".
    silent_after_s: float = 900.0
    # Personal events (resident references) are purged after this; hourly aggregates stay.
    retention_days: float = 30.0
    # Reads (GET) need a key of scope `read` or more, except /health and /metrics (and the
    # OpenAPI document); true opens them to anyone for a demo (LIJIA_OPEN_READS=true).
    open_reads: bool = False
    max_body_bytes: int = 64 * 1024
    # Per API key, on write endpoints (limits' notation: "120/minute", "10/second").
    write_rate_limit: str = "120/minute"
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:8501"])

    # The live stream (GET /stream, backend/live.py): every subscriber reads one shared buffer of
    # encoded frames; one further behind than these loses the oldest and is told how many
    # (`resync`). Memory: this buffer plus at most ~100 KiB of unsent bytes per subscriber.
    stream_buffer_frames: int = Field(default=2048, ge=1)
    stream_buffer_bytes: int = Field(default=2 * 1024 * 1024, ge=64 * 1024)
    # A subscriber whose connection accepts nothing for this long is disconnected.
    stream_stall_timeout_s: float = Field(default=30.0, gt=0)
    # More subscribers at once are refused with 503.
    stream_max_subscribers: int = Field(default=500, ge=1)
    # Connections the server holds at once (uvicorn answers 503 beyond): bounds what an outsider
    # who opens sockets can make the backend keep, above the stream's own limit.
    max_connections: int = Field(default=1000, ge=1)
    # A request's whole body must arrive within this (408 otherwise): no trickling for ever.
    body_timeout_s: float = Field(default=30.0, gt=0)
    # On shutdown, open live streams are ended after this (they never end by themselves).
    shutdown_grace_s: int = Field(default=3, ge=0)

    @field_validator("ingest_client_id")
    @classmethod
    def _not_a_device_id(cls, value: str) -> str:
        # A configured id must keep what the derived one has: a `:`, which no device id has.
        if value and ":" not in value:
            raise ValueError("the ingest client id must contain ':' so no device id can equal it")
        return value

    def ingest_id(self) -> str:
        """Fixed across restarts, one per host when replicas share the load. Public and
        readable: the broker accepts a device's credentials only with that device's id as
        client id (broker_config/mosquitto.conf), and no device id contains `:`
        (contracts.topics.LEVEL_RE), so no device can take this session over."""
        if self.ingest_client_id:
            return self.ingest_client_id
        host = f":{socket.gethostname()[:48]}" if self.share_group else ""
        return f"backend:ingest{host}"

    def backend_password(self) -> str:
        if self.mqtt_password.get_secret_value():
            return self.mqtt_password.get_secret_value()
        return credentials.load(self.credentials_dir).backend_password


def get_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
