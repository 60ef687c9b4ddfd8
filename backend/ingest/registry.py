"""The provisioned devices ingest accepts, read from the database: unknown devices are
refused, not created."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from backend.ingest.classify import Rules
from backend.models import Device, table


class Registry(Rules):
    """Classification rules whose device list (id -> kind) is cached from the device table."""

    def __init__(
        self,
        engine: Engine,
        reject_retained: bool = True,
        max_clock_skew_s: float | None = None,
        clock_skew_flag_s: float | None = None,
    ) -> None:
        super().__init__(
            kinds={},
            reject_retained=reject_retained,
            max_clock_skew_s=max_clock_skew_s,
            clock_skew_flag_s=clock_skew_flag_s,
        )
        self.engine = engine
        self.refresh()

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(table(Device).c.device_id, table(Device).c.kind))
            self.kinds = {r.device_id: r.kind for r in rows}
