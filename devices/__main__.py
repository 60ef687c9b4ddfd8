"""`python -m devices`: run the simulated fleet (command line). See devices/README.md."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text

from adapters.fleet import DEFAULT_FLEET, FLEET_SIZE_ENV, load_fleet
from contracts.clock import parse_speed, speed_label
from contracts.vocabulary import STREET_TZ
from devices.clock import START_HELP, parse_start
from devices.runner import FleetRunner
from devices.session import BrokerAddress
from devices.status import Status, StatusLog

app = typer.Typer(add_completion=False, help="The simulated Lijia Street fleet.")
log = logging.getLogger("devices")


@app.callback()
def main() -> None:
    """The simulated Lijia Street fleet."""


def _speed(value: str) -> str:
    try:
        parse_speed(value)
    except ValueError:
        raise typer.BadParameter("a positive number (1 = real time) or 'max'") from None
    return value


def _start(value: str | None) -> str | None:
    try:
        parse_start(value)
    except ValueError:
        raise typer.BadParameter(
            "now, demo, a time of day (07:30) or an ISO date or date-time (2026-11-23T07:00)"
        ) from None
    return value


@app.command()
def run(
    fleet: Annotated[Path, typer.Option(envvar="LIJIA_FLEET_FILE")] = DEFAULT_FLEET,
    devices: Annotated[
        int | None,
        typer.Option(
            envvar=FLEET_SIZE_ENV,
            min=1,
            help="street size N (Fleet.scaled): the fleet's devices, then copies of them",
        ),
    ] = None,
    host: Annotated[str, typer.Option(envvar="LIJIA_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="LIJIA_MQTT_PORT")] = 1883,
    protocol: Annotated[str, typer.Option(envvar="LIJIA_MQTT_PROTOCOL")] = "5",
    credentials_dir: Annotated[Path, typer.Option(envvar="LIJIA_CREDENTIALS_DIR")] = Path(
        "var/credentials"
    ),
    speed: Annotated[
        str,
        typer.Option(
            envvar="LIJIA_SPEED",
            callback=_speed,
            help="simulated seconds per real second (1 = real time, 60 = a minute a second), "
            "or 'max': as fast as the broker takes it",
        ),
    ] = "1",
    seed: Annotated[
        int | None, typer.Option(envvar="LIJIA_SEED", help="defaults to the fleet file's seed")
    ] = None,
    start: Annotated[
        str, typer.Option(envvar="LIJIA_START", callback=_start, help=START_HELP)
    ] = "now",
    hours: Annotated[
        float | None,
        typer.Option(
            min=0, help="stop after this many simulated hours (default: until Ctrl-C / SIGTERM)"
        ),
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="run only these device ids")] = None,
    status_every: Annotated[
        float, typer.Option(min=0.1, help="seconds between status lines when not on a terminal")
    ] = 10.0,
    connect_timeout: Annotated[
        float,
        typer.Option(min=0, help="start the clock then, even if some devices are not online"),
    ] = 30.0,
) -> None:
    """Connect every device of the fleet and let the street live until Ctrl-C / SIGTERM (or for
    --hours of simulated time). Same fleet file, seed and --start: same events, at any speed."""
    console = Console(stderr=True)
    live_line = console.is_terminal
    handler: logging.Handler = (
        RichHandler(console=console, show_path=False) if live_line else logging.StreamHandler()
    )
    fmt = "%(message)s" if live_line else "%(asctime)s %(levelname)s %(name)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, handlers=[handler])
    pace = parse_speed(speed)
    street = load_fleet(fleet, devices)
    try:
        runner = FleetRunner(
            street,
            credentials_dir,
            BrokerAddress(host, port, protocol),
            speed=pace,
            seed=seed,
            start=parse_start(start),
            only=set(only) if only else None,
            hours=hours,
            connect_timeout=connect_timeout,
        )
    except (OSError, ValueError) as exc:  # no credentials (for this street size)
        log.error("%s", exc)
        raise typer.Exit(2) from None
    until = f", for {hours:g} simulated hours" if hours is not None else ""
    log.info(
        "Lijia Street: %d devices, seed %d, speed %s, start %s CST, %.1f journeys/h%s",
        len(runner.sessions),
        runner.seed,
        speed_label(pace),
        runner.clock.start.astimezone(STREET_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        street.journeys_per_hour,
        until,
    )
    stopping = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = StatusLog(log.info)
    if live_line:
        with Live(Text("connecting…"), console=console, refresh_per_second=4) as live:

            def show(s: Status) -> None:
                live.update(Text(status.line(s)))

            runner.run(stopping, show, status_every=0.5)
    else:
        runner.run(stopping, status, status_every=status_every)
    final = runner.status()
    log.info(
        "stopped at %s CST: %d messages published (%d events), %d errors, %d journeys",
        final.sim_now.astimezone(STREET_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        final.published,
        final.events,
        final.errors,
        final.journeys,
    )


if __name__ == "__main__":
    app()
