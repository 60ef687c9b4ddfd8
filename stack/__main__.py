"""`python -m stack`: credentials for a fleet, and `up`, the whole street as local processes."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from adapters import credentials
from adapters.fleet import DEFAULT_FLEET, FLEET_SIZE_ENV, load_fleet
from adapters.limits import raise_fd_limit
from contracts.clock import parse_speed
from devices.clock import START_HELP, parse_start
from stack.broker import BrokerProcess, dynsec_plugin, generate_credentials, mosquitto_binary
from stack.ports import free_port, port_is_free

app = typer.Typer(add_completion=False, help="Run Lijia Street on this machine.")
log = logging.getLogger("stack")

# The street's size, the same N for credentials, simulator and backend (contracts.fleet).
DevicesOption = Annotated[
    int | None,
    typer.Option(
        envvar=FLEET_SIZE_ENV,
        min=1,
        help="street size N (Fleet.scaled): the fleet's devices, then copies of them",
    ),
]


@app.command("credentials")
def make_credentials(
    fleet: Annotated[Path, typer.Option(envvar="LIJIA_FLEET_FILE")] = DEFAULT_FLEET,
    out: Annotated[Path, typer.Option(envvar="LIJIA_CREDENTIALS_DIR")] = Path("var/credentials"),
    devices: DevicesOption = None,
) -> None:
    """Generate one MQTT credential per device (and the services') for the fleet: the broker's
    dynamic-security.json and secrets.json. A running Mosquitto reads them at its next start."""
    creds = generate_credentials(load_fleet(fleet, devices), out)
    typer.echo(
        f"wrote {credentials.broker_file(out)} and {out / credentials.SECRETS_FILE} "
        f"for {len(creds.devices)} devices"
    )


def _port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def devices_args(speed: str, seed: int | None, start: str) -> list[str]:
    """`python -m devices run`'s arguments for `up`'s options (the start is resolved once, here,
    so that a restart of the simulator would not move it)."""
    args = ["--speed", speed]
    if seed is not None:
        args += ["--seed", str(seed)]
    at = parse_start(start)
    return [*args, "--start", "now" if at is None else at.isoformat()]


@app.command()
def up(
    fleet: Annotated[Path, typer.Option(envvar="LIJIA_FLEET_FILE")] = DEFAULT_FLEET,
    speed: Annotated[
        str,
        typer.Option(
            help="simulated seconds per real second (1 = real time), or 'max': as fast as "
            "the broker takes it"
        ),
    ] = "1",
    seed: Annotated[
        int | None, typer.Option(help="the street's seed (default: the fleet file's)")
    ] = None,
    start: Annotated[str, typer.Option(help=f"{START_HELP}. Default: demo")] = "demo",
    devices: DevicesOption = None,
    var: Annotated[Path, typer.Option(help="folder for the database, logs, credentials")] = Path(
        "var"
    ),
    embedded_broker: Annotated[
        bool, typer.Option(help="use the pure-Python broker even if Mosquitto is installed")
    ] = False,
    console: Annotated[bool, typer.Option(help="start the Streamlit console")] = True,
) -> None:
    """Start broker, backend, devices and console; print their addresses; Ctrl-C stops all."""
    try:
        parse_speed(speed)
    except ValueError:
        raise typer.BadParameter("a positive number or 'max'", param_hint="--speed") from None
    try:
        sim_args = devices_args(speed, seed, start)
    except ValueError:
        raise typer.BadParameter(
            "now, demo, a time of day (07:30) or an ISO date or date-time", param_hint="--start"
        ) from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    var = var.resolve()
    logs = var / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cred_dir = var / "credentials"
    street = load_fleet(fleet, devices)
    generate_credentials(street, cred_dir)
    # One socket per device in the broker (a child: it inherits the limit) and the simulator.
    raise_fd_limit(len(street.devices) + 1024)
    key_file = var / "api_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(24))
        key_file.chmod(0o600)
    api_key = key_file.read_text().strip()

    # A Mosquitto without the dynamic security plugin could not bind devices to their ids.
    embedded = embedded_broker or mosquitto_binary() is None or dynsec_plugin() is None
    mqtt_port, api_port, ui_port = _port(18830), _port(8000), _port(8501)
    broker = BrokerProcess(mqtt_port, var / "broker", cred_dir, embedded=embedded)
    broker.start()
    env = {
        **os.environ,
        "LIJIA_FLEET_FILE": str(fleet.resolve()),
        "LIJIA_MQTT_HOST": "127.0.0.1",
        "LIJIA_MQTT_PORT": str(mqtt_port),
        "LIJIA_MQTT_PROTOCOL": "3.1.1" if broker.embedded else "5",
        "LIJIA_CREDENTIALS_DIR": str(cred_dir),
        "LIJIA_DATABASE_URL": os.environ.get("LIJIA_DATABASE_URL", f"sqlite:///{var}/lijia.db"),
        "LIJIA_API_PORT": str(api_port),
        "LIJIA_API_KEYS": json.dumps({api_key: "admin"}),
        "LIJIA_CORS_ORIGINS": json.dumps([f"http://localhost:{ui_port}"]),
        "LIJIA_API_URL": f"http://127.0.0.1:{api_port}",
        "LIJIA_API_KEY": api_key,
    }
    # Backend and simulator load the same street (load_fleet(file, size)).
    env.pop(FLEET_SIZE_ENV, None)
    if devices is not None:
        env[FLEET_SIZE_ENV] = str(devices)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append((name, proc))
        return proc

    stopping = False

    def stop(_sig: int = 0, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        backend = spawn("backend", [sys.executable, "-m", "backend"])
        _wait_http(f"http://127.0.0.1:{api_port}/health", backend)
        spawn("devices", [sys.executable, "-m", "devices", "run", *sim_args])
        if console:
            ui = spawn(
                "console",
                [
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    "ui/streamlit_app.py",
                    "--server.port",
                    str(ui_port),
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
            )
            _wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", ui)
        kind = "embedded pure-Python broker (MQTT 3.1.1)" if broker.embedded else "Mosquitto"
        typer.echo(
            f"\nLijia Street is up.\n"
            f"  console : http://localhost:{ui_port}\n"
            f"  API     : http://localhost:{api_port}  (OpenAPI: /docs)\n"
            f"  broker  : mqtt://127.0.0.1:{mqtt_port}  ({kind})\n"
            f"  API key : {key_file} (scope admin)\n"
            f"  logs    : {logs}\n"
            f"Ctrl-C stops everything."
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    typer.echo(f"{name} exited with {proc.returncode}; see {logs}/{name}.log")
                    stopping = True
            time.sleep(0.5)
    finally:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()


if __name__ == "__main__":
    app()
