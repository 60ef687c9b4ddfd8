"""Worker for the simulator benchmark: FleetRunner (the product's simulator) with a scaled street
at real-time speed, or the same number of bare paho clients on the same MqttLoop (the floor).

    python -m bench.sim_worker fleet|bare PORT CREDS_DIR FLEET_FILE HOLD_S [SPEED]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from adapters.credentials import load as load_credentials
from adapters.fleet import load_fleet
from adapters.limits import raise_fd_limit
from devices.loop import MqttLoop
from devices.runner import FleetRunner
from devices.session import BrokerAddress


def say(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


def rss() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def say_connected(connected: int, of: int, t0: float, cpu0: float) -> None:
    """The "connected" line: how many of how many, and the wall and CPU time since t0/cpu0."""
    say(
        event="connected",
        connected=connected,
        of=of,
        connect_s=time.monotonic() - t0,
        connect_cpu_s=time.process_time() - cpu0,
        rss_mb=rss(),
    )


def say_held(
    rss0: float,
    t1: float,
    cpu1: float,
    connected: int,
    of: int,
    *,
    published: int = 0,
    events: int = 0,
    errors: int = 0,
    backlog: int = 0,
) -> None:
    """The "held" line: memory, CPU and publish rates over the hold that began at t1/cpu1."""
    dt = time.monotonic() - t1
    say(
        event="held",
        rss0_mb=rss0,
        rss_mb=rss(),
        cpu_cores=(time.process_time() - cpu1) / dt,
        connected=connected,
        of=of,
        msgs_per_s=published / dt,
        events_per_s=events / dt,
        errors=errors,
        backlog=backlog,
    )


# Resident memory after the imports, before any device exists: per-device memory is measured
# from here (fleet file, credentials, behaviours, sessions, paho clients, buffers).
RSS_BASE = rss()


def fleet_mode(port: int, creds_dir: Path, fleet_file: Path, hold: float, speed: float) -> None:
    from bench.common import SIM_START

    fleet = load_fleet(fleet_file)
    rss0 = RSS_BASE
    # From a Monday 08:00 in Chongqing (the morning rush), the same street every run.
    runner = FleetRunner(
        fleet, creds_dir, BrokerAddress("127.0.0.1", port), speed=speed, start=SIM_START
    )
    t0, cpu0 = time.monotonic(), time.process_time()
    runner.start()
    deadline = t0 + 180
    while runner.phase == "connecting" and time.monotonic() < deadline:
        runner.tick()
    say_connected(runner.stats.connected, len(runner.sessions), t0, cpu0)
    # Settle: the first telemetry of every device goes out at start.
    settle_end = time.monotonic() + min(3.0, hold)
    while time.monotonic() < settle_end:
        runner.tick()
    published0, events0 = runner.stats.published, runner.stats.events
    t1, cpu1 = time.monotonic(), time.process_time()
    end = t1 + hold
    while time.monotonic() < end:
        runner.tick()
    stats = runner.stats
    say_held(rss0, t1, cpu1, stats.connected, len(runner.sessions),
             published=stats.published - published0, events=stats.events - events0,
             errors=stats.errors, backlog=stats.backlog)  # fmt: skip
    runner.shutdown()


def bare_mode(port: int, creds_dir: Path, fleet_file: Path, hold: float, _speed: float) -> None:
    fleet = load_fleet(fleet_file)
    creds = load_credentials(creds_dir)
    raise_fd_limit(len(fleet.devices) + 256)
    rss0 = RSS_BASE
    loop = MqttLoop()
    connected = 0

    def on_connect(*_a: Any) -> None:
        nonlocal connected
        connected += 1

    clients = []
    for spec in fleet.devices:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=spec.id, protocol=mqtt.MQTTv5)
        c.username_pw_set(spec.id, creds.devices[spec.id])
        c.on_connect = on_connect
        loop.attach(c)
        clients.append(c)
    t0, cpu0 = time.monotonic(), time.process_time()
    pending = list(clients)
    deadline = t0 + 180
    opened = 0
    while (pending or connected < len(clients)) and time.monotonic() < deadline:
        # In waves, as FleetRunner does: at most 1,000 waiting for their CONNACK.
        wave = pending[: max(0, min(250, 1000 - (opened - connected)))]
        for c in wave:
            c.connect_async("127.0.0.1", port, 30)
            c.reconnect()
        del pending[: len(wave)]
        opened += len(wave)
        loop.run_once(0.01)
    say_connected(connected, len(clients), t0, cpu0)
    t1, cpu1 = time.monotonic(), time.process_time()
    end = t1 + hold
    while time.monotonic() < end:
        loop.run_once(0.2)
    say_held(rss0, t1, cpu1, connected, len(clients))
    for c in clients:
        c.disconnect()
    loop.run(until=lambda: not loop.selector.get_map() or time.monotonic() > end + 15)


def memory_mode(port: int, creds_dir: Path, fleet_file: Path, _hold: float, _speed: float) -> None:
    """Where FleetRunner's memory goes, by source line (tracemalloc), once all are connected."""
    import tracemalloc

    from bench.common import SIM_START

    tracemalloc.start()
    fleet = load_fleet(fleet_file)
    runner = FleetRunner(
        fleet, creds_dir, BrokerAddress("127.0.0.1", port), speed=1.0, start=SIM_START
    )
    runner.start()
    deadline = time.monotonic() + 120
    while runner.phase == "connecting" and time.monotonic() < deadline:
        runner.tick()
    snap = tracemalloc.take_snapshot()
    total = sum(s.size for s in snap.statistics("filename"))
    lines = [
        f"traced {total / 2**20:.1f} MB for {len(fleet.devices):,} devices "
        f"({total / 1024 / len(fleet.devices):.1f} kB/device); by file:"
    ]
    for st in snap.statistics("filename")[:8]:
        lines.append(f"  {st.size / 2**20:6.1f} MB  {_short(st.traceback[0].filename)}")
    lines.append("by line:")
    for st in snap.statistics("lineno")[:12]:
        fr = st.traceback[0]
        lines.append(f"  {st.size / 2**20:6.1f} MB  {_short(fr.filename)}:{fr.lineno}")
    say(event="memory", text="\n".join(lines), devices=len(fleet.devices))
    runner.shutdown()


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            return path.split(marker, 1)[1]
    return (
        str(Path(path).relative_to(Path(__file__).resolve().parent.parent))
        if path.startswith(str(Path(__file__).resolve().parent.parent))
        else path
    )


def main() -> None:
    mode, port, creds_dir, fleet_file, hold = sys.argv[1:6]
    speed = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
    fn = {"fleet": fleet_mode, "bare": bare_mode, "memory": memory_mode}[mode]
    fn(int(port), Path(creds_dir), Path(fleet_file), float(hold), speed)


if __name__ == "__main__":
    main()
