"""The street's fleet file and the look-ups every process repeats (which kind each device is)."""

from __future__ import annotations

from pathlib import Path

import yaml

from contracts.fleet import Fleet, parse_fleet

DEFAULT_FLEET = Path(__file__).resolve().parent.parent / "devices" / "fleet.yaml"
# The one variable every process reads for the street's size (see `load_fleet`).
FLEET_SIZE_ENV = "LIJIA_FLEET_SIZE"


def load_fleet(path: Path | str = DEFAULT_FLEET, size: int | None = None) -> Fleet:
    """The fleet file, as a street of `size` devices if given (`Fleet.scaled`).

    Credentials (`python -m stack credentials --devices N`), the simulator
    (`python -m devices run --devices N`) and the backend's registry (`LIJIA_FLEET_SIZE=N`) all
    load the street through here, so the same N devices exist everywhere.
    """
    fleet = parse_fleet(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    return fleet if size is None else fleet.scaled(size)


def device_kinds(path: Path | str = DEFAULT_FLEET, size: int | None = None) -> dict[str, str]:
    """Device id → kind for the street `load_fleet(path, size)` describes (reads the file)."""
    return {d.id: d.kind for d in load_fleet(path, size).devices}
