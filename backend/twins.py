"""Device twins and availability: the one place that writes a device's latest state.

Ingest hands over what a batch changed (availability from the state channel, last traffic,
sequence, clock skew, telemetry); upkeep marks devices that went silent. Reads are the API's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection, Engine

from backend.models import Device, table
from contracts.stream import AvailabilityMessage
from contracts.vocabulary import Availability

DEVICE = table(Device)
# The availability reason of a device we mark offline ourselves (a device's own are in
# contracts/envelope.py).
SILENT = "silent"
# Twin UPDATE statements by the set of columns they change, built once (a handful of sets).
_TWIN_UPDATES: dict[tuple[str, ...], Any] = {}


def update_twins(conn: Connection, twins: dict[str, dict[str, Any]]) -> None:
    """One executemany per set of changed columns instead of one statement per device: a batch
    from a live street touches hundreds of devices."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for device_id, values in twins.items():
        if not values:  # e.g. only injected events: the twin does not change
            continue
        groups.setdefault(tuple(sorted(values)), []).append({"b_device_id": device_id, **values})
    for columns, rows in groups.items():
        stmt = _TWIN_UPDATES.get(columns)
        if stmt is None:
            stmt = _TWIN_UPDATES[columns] = (
                update(DEVICE)
                .where(DEVICE.c.device_id == bindparam("b_device_id"))
                .values({c: bindparam(c) for c in columns})
            )
        conn.execute(stmt, rows)


def mark_silent(
    engine: Engine,
    silent_after_s: float,
    now: datetime | None = None,
    continuous_since: datetime | None = None,
) -> list[AvailabilityMessage]:
    """Devices that say they are online but have sent nothing for too long are offline. On
    street time (`last_seen` is street time at receipt), and only over continuous street time
    (`continuous_since`, backend/street_clock.py): right after a jump no device has published
    for hours, by design, and none of them is silent."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=silent_after_s)
    if continuous_since is not None and continuous_since > cutoff:
        return []
    dev = table(Device).c
    with engine.begin() as conn:
        rows = conn.execute(
            update(table(Device))
            .where(
                dev.availability == Availability.ONLINE,
                dev.last_seen < cutoff,
            )
            .values(
                availability=Availability.OFFLINE,
                availability_reason=SILENT,
                availability_changed_at=now,
            )
            .returning(dev.device_id)
        ).all()
    return [
        AvailabilityMessage(
            device_id=r[0],
            availability=Availability.OFFLINE,
            availability_reason=SILENT,
            availability_changed_at=now,
        )
        for r in rows
    ]
