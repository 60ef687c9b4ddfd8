"""Fleet look-ups every process repeats: which kind each device of the street is."""

from __future__ import annotations

from pathlib import Path

from contracts.fleet import DEFAULT_FLEET, load_fleet


def device_kinds(path: Path | str = DEFAULT_FLEET, size: int | None = None) -> dict[str, str]:
    """Device id → kind for the street `load_fleet(path, size)` describes (reads the file)."""
    return {d.id: d.kind for d in load_fleet(path, size).devices}
