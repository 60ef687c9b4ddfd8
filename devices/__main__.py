"""`python -m devices`: run the simulated fleet (command line)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from contracts.fleet import DEFAULT_FLEET, load_fleet
from devices.runner import FleetRunner
from devices.session import BrokerAddress

app = typer.Typer(add_completion=False, help="The simulated Lijia Street fleet.")


@app.callback()
def main() -> None:
    """The simulated Lijia Street fleet."""


@app.command()
def run(
    fleet: Annotated[Path, typer.Option(envvar="LIJIA_FLEET_FILE")] = DEFAULT_FLEET,
    host: Annotated[str, typer.Option(envvar="LIJIA_MQTT_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="LIJIA_MQTT_PORT")] = 1883,
    protocol: Annotated[str, typer.Option(envvar="LIJIA_MQTT_PROTOCOL")] = "5",
    credentials_dir: Annotated[Path, typer.Option(envvar="LIJIA_CREDENTIALS_DIR")] = Path(
        "var/credentials"
    ),
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="defaults to the fleet file's seed")] = None,
    only: Annotated[list[str] | None, typer.Option(help="run only these device ids")] = None,
) -> None:
    """Connect every device of the fleet and let the street live until Ctrl-C / SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runner = FleetRunner(
        load_fleet(fleet),
        credentials_dir,
        BrokerAddress(host, port, protocol),
        speed=speed,
        seed=seed,
        only=set(only) if only else None,
    )
    runner.run_forever()


if __name__ == "__main__":
    app()
