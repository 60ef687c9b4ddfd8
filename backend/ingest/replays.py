"""The replay check's database side: the stored events that share a device and sequence number
with a batch, read through the (device_id, seq) index whatever the batch's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from backend.models import Event, table

EVENT = table(Event)

_REPLAY_COLUMNS = (EVENT.c.device_id, EVENT.c.boot, EVENT.c.seq, EVENT.c.event_id)
# Both lookups below probe ix_event_device_id_seq. The obvious `(device_id, seq) IN (pairs)` does
# not: SQLite plans it as `SCAN event`, a full scan per batch that grows with the table (30 ms
# a batch at 20,000 rows).
_SEQ_RANGE_OF_DEVICE = select(*_REPLAY_COLUMNS).where(
    EVENT.c.device_id == bindparam("b_device"),
    EVENT.c.seq >= bindparam("b_lo"),
    EVENT.c.seq <= bindparam("b_hi"),
)
# (device_id, seq) pairs joined as a VALUES list: SQLite and PostgreSQL both name its columns
# column1, column2, and loop over it probing the index. A few fixed sizes (the last chunk padded
# by repeating its last pair) keep the statements few and compiled once.
_PAIR_SIZES = (16, 64, 256)
_PAIR_LOOKUPS = {
    n: text(
        "SELECT e.device_id, e.boot, e.seq, e.event_id FROM (VALUES "
        + ", ".join(f"(:d{i}, :s{i})" for i in range(n))
        + ") AS v JOIN event AS e ON e.device_id = v.column1 AND e.seq = v.column2"
    )
    for n in _PAIR_SIZES
}


def stored_seqs(conn: Connection, seqs: dict[str, set[int]]) -> Iterator[Any]:
    """Stored events (device_id, boot, seq, event_id) of these devices with these sequence
    numbers (and maybe a few more). Reads nothing when `seqs` is empty."""
    loose: list[tuple[str, int]] = []
    for device, mine in seqs.items():
        lo, hi = min(mine), max(mine)
        if len(mine) >= 32 and hi - lo < 2 * len(mine):
            # A run of numbers from one device (a drained backlog): one range read.
            params: dict[str, Any] = {"b_device": device, "b_lo": lo, "b_hi": hi}
            yield from conn.execute(_SEQ_RANGE_OF_DEVICE, params)
        else:
            loose.extend((device, seq) for seq in mine)
    # A few numbers from each of many devices (a live street): one join for them all.
    last = _PAIR_SIZES[-1]
    for start in range(0, len(loose), last):
        chunk = loose[start : start + last]
        size = next(n for n in _PAIR_SIZES if n >= len(chunk))
        chunk += [chunk[-1]] * (size - len(chunk))
        pairs: dict[str, Any] = {}
        for i, (device, seq) in enumerate(chunk):
            pairs[f"d{i}"], pairs[f"s{i}"] = device, seq
        yield from conn.execute(_PAIR_LOOKUPS[size], pairs)
