"""What a clock jump costs: the CPU time to simulate (without publishing) one street-day.

A jump (contracts/clock.py, ClockAction) is a silent fast-forward: every device lives through the
skipped time so the street after it is the one that would have been. This measures that work on
the pure street (devices/street.py), for the demo street and larger ones:

    .venv/bin/python -m bench.jump [--devices 24 1000] [--hours 24]

It prints one line per street size; it does not write docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta

from adapters.fleet import load_fleet
from contracts.vocabulary import STREET_TZ
from devices.street import Street

START = datetime(2026, 12, 8, 9, 0, tzinfo=STREET_TZ)  # a Tuesday morning


def skip(devices: int | None, hours: float) -> tuple[int, int, float]:
    """(devices, emissions skipped, CPU seconds) for `hours` of street time."""
    fleet = load_fleet(size=devices) if devices else load_fleet()
    street = Street(fleet)
    street.start(START)
    began = time.process_time()
    emissions = sum(1 for _ in street.run(START + timedelta(hours=hours)))
    return len(fleet.devices), emissions, time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, nargs="+", default=[0, 1000])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    for size in args.devices:
        n, emissions, cpu = skip(size or None, args.hours)
        print(
            f"{n:>6} devices: {args.hours:g} street-hours skipped = {emissions:,} emissions "
            f"simulated in {cpu:.1f} s CPU ({emissions / cpu:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
