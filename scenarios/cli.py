"""`python -m scenarios inject | run | record | replay | schema`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from adapters.fleet import DEFAULT_FLEET
from contracts.topics import Channel
from scenarios.http_street import HttpStreet
from scenarios.junit import junit_xml
from scenarios.model import SCHEMA_PATH, load_scenario, schema_text
from scenarios.progress import RunEvent, StepDone, StepFailed, StepStarted, Stopped, VerdictReached
from scenarios.recording import read_recording, record, replay
from scenarios.runner import Run
from scenarios.wire import Connection, DevicePublishers, ScenarioError, new_run_id

app = typer.Typer(
    help="Lijia Street drills: inject events, run scenario files, record and replay traffic.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

HostOpt = Annotated[str, typer.Option("--mqtt-host", envvar="LIJIA_MQTT_HOST", help="broker host")]
PortOpt = Annotated[int, typer.Option("--mqtt-port", envvar="LIJIA_MQTT_PORT", help="broker port")]
ProtoOpt = Annotated[
    str, typer.Option("--mqtt-protocol", envvar="LIJIA_MQTT_PROTOCOL", help="5 or 3.1.1")
]
CredsOpt = Annotated[
    Path,
    typer.Option(
        "--credentials-dir", envvar="LIJIA_CREDENTIALS_DIR", help="folder with secrets.json"
    ),
]
FleetOpt = Annotated[
    Path, typer.Option("--fleet", envvar="LIJIA_FLEET_FILE", help="fleet file (device → kind)")
]


def _conn(host: str, port: int, protocol: str, creds: Path, fleet: Path) -> Connection:
    if protocol not in ("5", "3.1.1"):
        raise typer.BadParameter("--mqtt-protocol must be 5 or 3.1.1")
    size = os.environ.get("LIJIA_FLEET_SIZE")
    return Connection(host, port, protocol, creds, fleet, int(size) if size else None)


def styled(event: RunEvent) -> str | None:
    """A progress event as a line of rich markup for the terminal (None: not a line)."""
    if isinstance(event, StepDone):
        return None
    if isinstance(event, StepStarted):
        return f"[dim]+{event.elapsed_s:5.1f} s[/] {escape(event.body)}"
    if isinstance(event, VerdictReached):
        mark = "[green]✔[/]" if event.passed else "[red]✘[/]"
        return f"{mark} {escape(event.body)}"
    if isinstance(event, StepFailed):
        return f"[red]step failed:[/] {escape(event.error)}"
    if isinstance(event, Stopped):
        return f"[yellow]{event.text}[/]"
    return escape(event.text)


class Terminal:
    """The sink of a run in the terminal: its lines, and the timeline's progress in a status."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, StepDone) and self.status is not None:
            self.status.update(f"{event.text}; waiting for expectations…")
        line = styled(event)
        if line is not None:
            console.print(line)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def inject(
    device: Annotated[str, typer.Option("--device", help="device id (fleet file)")],
    type_: Annotated[str, typer.Option("--type", help="event type, or 'telemetry'")],
    data: Annotated[str, typer.Option("--data", help="payload as a JSON object")] = "{}",
    correlation_id: Annotated[str | None, typer.Option("--correlation-id")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="tag for GET /events?run_id")
    ] = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    protocol: ProtoOpt = "5",
    creds: CredsOpt = Path("var/credentials"),
    fleet: FleetOpt = DEFAULT_FLEET,
) -> None:
    """Publish one event on the device's own topic (as the backend user), flagged injected,
    stamped with the street's time (the simulators' clock; wall time without one)."""
    try:
        payload: Any = json.loads(data)
    except ValueError as exc:
        _fail(f"--data is not JSON: {exc}")
    if not isinstance(payload, dict):
        _fail("--data must be a JSON object")
    channel = Channel.TELEMETRY if type_ == "telemetry" else Channel.EVENTS
    try:
        with DevicePublishers(_conn(host, port, protocol, creds, fleet)) as devices:
            devices.kind_of(device)  # unknown device: refuse before touching the broker
            env, topic = devices.inject(
                device,
                type_,
                payload,
                channel=channel,
                correlation_id=correlation_id,
                run_id=run_id,
            )
    except ScenarioError as exc:
        _fail(f"refused: {exc}")
    console.print(f"published {env.type} as {device} on {topic}")
    ts = env.ts.isoformat().replace("+00:00", "Z")
    console.print(
        json.dumps({"event_id": env.event_id, "topic": topic, "run_id": run_id, "ts": ts})
    )


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="scenario YAML file", exists=True, dir_okay=False)],
    api: Annotated[str, typer.Option("--api", envvar="LIJIA_API_URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="LIJIA_API_KEY", help="an operate key")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write a JUnit XML report")] = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    protocol: ProtoOpt = "5",
    creds: CredsOpt = Path("var/credentials"),
    fleet: FleetOpt = DEFAULT_FLEET,
) -> None:
    """Play a scenario's timeline, check its expectations, exit 1 if any fails."""
    try:
        scenario = load_scenario(file)
    except ValidationError as exc:
        _fail(f"{file} is not a valid scenario:\n{exc}")
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {file}: {exc}")
    street = HttpStreet(api, api_key)
    conn = _conn(host, port, protocol, creds, fleet)
    terminal = Terminal()
    with DevicePublishers(conn) as devices:
        r = Run(scenario, street, devices, sink=terminal)
        console.rule(f"scenario [bold]{escape(scenario.name)}[/] · run {r.run_id}")
        if scenario.description:
            console.print(scenario.description.strip(), markup=False)
        t0 = time.monotonic()
        try:
            with console.status("running…") as terminal.status:
                r.execute()
        except ScenarioError as exc:
            r.errors.append(str(exc))
        finally:
            terminal.status = None
            r.close()
        duration = time.monotonic() - t0
    street.close()

    table = Table(title=f"{scenario.name}: verdicts", show_lines=False)
    table.add_column("")
    table.add_column("expectation")
    table.add_column("seen")
    for v in r.verdicts:
        table.add_row(
            "[green]PASS[/]" if v.passed else "[red]FAIL[/]",
            escape(v.name),
            escape(f"{v.seen} (+{v.elapsed_s:.1f} s)"),
        )
    console.print(table)
    for v in r.verdicts:
        if not v.passed:
            console.print(f"[red]FAIL[/] {escape(f'{v.name}: {v.message}')}")
    for e in r.errors:
        console.print(f"[red]ERROR[/] timeline: {escape(e)}")
    if junit:
        junit_xml(r, junit, duration)
        console.print(f"JUnit report: {junit}")
    passed = sum(1 for v in r.verdicts if v.passed)
    console.print(
        f"{'[green]PASSED' if r.ok else '[red]FAILED'}[/] {passed}/{len(r.verdicts)} "
        f"expectations in {duration:.1f} s · run_id {r.run_id} "
        f"(GET /events?run_id={r.run_id})"
    )
    if not r.ok:
        raise typer.Exit(1)


@app.command("record")
def record_cmd(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write")],
    duration: Annotated[float, typer.Option("--duration", help="seconds", min=0.1)],
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    protocol: ProtoOpt = "5",
    creds: CredsOpt = Path("var/credentials"),
) -> None:
    """Record device traffic (events, telemetry, state, command results) as the backend user."""
    conn = _conn(host, port, protocol, creds, DEFAULT_FLEET)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("w", encoding="utf-8") as f:
            # Scripts (and the tests) wait for the "recording" line before producing traffic.
            n = record(
                conn,
                f,
                duration,
                on_ready=lambda: console.print(f"recording for {duration:g} s → {out}"),
            )
    except ScenarioError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print("interrupted")
        raise typer.Exit(130) from None
    console.print(f"recorded {n} messages in {duration:g} s → {out}")


@app.command("replay")
def replay_cmd(
    file: Annotated[Path, typer.Argument(help="a recording (JSON Lines)", exists=True)],
    speed: Annotated[
        float, typer.Option("--speed", help="2 = twice as fast; 0 = as fast as possible")
    ] = 1.0,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 1883,
    protocol: ProtoOpt = "5",
    creds: CredsOpt = Path("var/credentials"),
) -> None:
    """Republish a recording, each message as its own device, keeping relative timing."""
    conn = _conn(host, port, protocol, creds, DEFAULT_FLEET)
    run_id = new_run_id()
    try:
        items = sorted(read_recording(file), key=lambda i: i.t)
        with console.status(f"replaying {len(items)} messages…") as status:
            n = replay(
                conn,
                items,
                speed,
                on_message=lambda k, _i: status.update(f"{k}/{len(items)}"),
                run_id=run_id,
            )
    except ScenarioError as exc:
        _fail(str(exc))
    console.print(f"replayed {n} messages from {file} · run_id {run_id}")


@app.command()
def schema(
    check: Annotated[bool, typer.Option("--check", help="fail if schema.json is stale")] = False,
) -> None:
    """Write scenarios/schema.json from the pydantic models (or check it is current)."""
    text = schema_text()
    if check:
        if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
            _fail(f"{SCHEMA_PATH} is stale: run `python -m scenarios schema`", 1)
        console.print(f"{SCHEMA_PATH} is current")
        return
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    console.print(f"wrote {SCHEMA_PATH}")


def main() -> None:
    app(prog_name="python -m scenarios")


if __name__ == "__main__":  # pragma: no cover
    main()
