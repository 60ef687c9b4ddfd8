"""3. The simulator: FleetRunner with 1,000 / 5,000 / 10,000 devices of the default mix, each with
its own MQTT session and credential; connect time, CPU and memory per device, held connections.
Baseline: the same number of bare paho clients on the same MqttLoop, doing nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import (
    CpuSampler,
    Workspace,
    log,
    python_module,
    read_json_lines,
    terminating,
    wait_for_event,
)
from bench.targets import TARGET_DEVICES
from stack.broker import BrokerProcess


class BrokerClients:
    """Mosquitto's own count of connected clients ($SYS/broker/clients/connected)."""

    def __init__(self, broker: BrokerProcess, password: str) -> None:
        self.value: int | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench:sys-watch", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set("backend", password)
        self.client.on_connect = lambda c, *_a: c.subscribe("$SYS/broker/clients/connected")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, 30)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.value = int(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def one(parent: Path, mode: str, n: int, hold: float, speed: float = 1.0) -> dict[str, Any]:
    ws = Workspace.create(f"sim-{mode}-{n}-{speed:g}", parent)
    try:
        fleet, fleet_file = ws.fleet(n)
        creds, creds_dir = ws.credentials(fleet)
        broker = ws.broker(creds_dir)
        watch = BrokerClients(broker, creds.backend_password)
        lines: list[dict[str, Any]] = []
        proc = python_module(
            "bench.sim_worker",
            mode,
            str(broker.port),
            str(creds_dir),
            str(fleet_file),
            str(hold),
            str(speed),
            stdout=subprocess.PIPE,
        )
        with terminating(proc):
            reader = read_json_lines(proc, lines)
            died = f"simulator worker ({mode}, {n}) died"
            wait_for_event(proc, lines, "connected", died, 0.1)
            assert broker.proc is not None
            cpu = CpuSampler({"mosquitto": broker.proc.pid})
            wait_for_event(proc, lines, "held", died, 0.1)
            broker_cores = cpu.cores()["mosquitto"]
            broker_seen = watch.value
            proc.wait(120)
            reader.join(5)
        watch.close()
        connected = next(x for x in lines if x["event"] == "connected")
        held = next(x for x in lines if x["event"] == "held")
        rss_delta = held["rss_mb"] - held["rss0_mb"]
        return {
            "mode": mode,
            "speed": speed if mode == "fleet" else None,
            "devices": n,
            "connected_at_start": connected["connected"],
            "connect_s": connected["connect_s"],
            "connect_cpu_s": connected["connect_cpu_s"],
            "connected_at_end": held["connected"],
            "broker_clients_connected": broker_seen,  # includes the watcher itself
            "cpu_cores": held["cpu_cores"],
            "rss_mb": held["rss_mb"],
            "rss_delta_mb": rss_delta,
            "kb_per_device": rss_delta * 1024 / n,
            "msgs_per_s": held["msgs_per_s"],
            "events_per_s": held["events_per_s"],
            "errors": held["errors"],
            "broker_cpu_cores": broker_cores,
            "hold_s": hold,
        }
    finally:
        ws.close()


def memory(parent: Path, n: int) -> dict[str, Any]:
    log(f"simulator: tracemalloc of FleetRunner with {n:,} devices")
    ws = Workspace.create(f"sim-memory-{n}", parent)
    try:
        fleet, fleet_file = ws.fleet(n)
        _creds, creds_dir = ws.credentials(fleet)
        broker = ws.broker(creds_dir)
        lines: list[dict[str, Any]] = []
        proc = python_module(
            "bench.sim_worker",
            "memory",
            str(broker.port),
            str(creds_dir),
            str(fleet_file),
            "0",
            stdout=subprocess.PIPE,
        )
        with terminating(proc):
            reader = read_json_lines(proc, lines)
            proc.wait(180)
            reader.join(5)
        found = next((x for x in lines if x.get("event") == "memory"), {})
        return {"devices": n, "text": found.get("text")}
    finally:
        ws.close()


# 15 simulated minutes per real minute: about one message per device per second at the
# morning rush, the load of the one-core target for 5,000 devices (bench/targets.py).
BUSY_SPEED = 15.0


def run(parent: Path, quick: bool) -> dict[str, Any]:
    sizes = [500] if quick else [1_000, 5_000, 10_000]
    realtime_at = sizes[-1] if quick else TARGET_DEVICES
    hold = 4.0 if quick else 10.0
    out: dict[str, Any] = {
        "sizes": sizes,
        "hold_s": hold,
        "busy_speed": BUSY_SPEED,
        "fleet": [],
        "bare": [],
        "realtime": [],
    }
    plan = [(n, "bare", 1.0, "bare") for n in sizes]
    plan += [(n, "fleet", BUSY_SPEED, "fleet") for n in sizes]
    plan += [(realtime_at, "fleet", 1.0, "realtime")]
    if not quick:
        out["memory"] = memory(parent, sizes[0])
    for n, mode, speed, key in plan:
        label = f"{mode} x{speed:g}" if mode == "fleet" else mode
        log(f"simulator: {label}, {n:,} devices (hold {hold:.0f} s)")
        res = one(parent, mode, n, hold, speed)
        out[key].append(res)
        log(
            f"  connected {res['connected_at_end']:,}/{n:,} in {res['connect_s']:.1f} s, "
            f"{res['cpu_cores']:.2f} cores, {res['rss_delta_mb']:.0f} MB "
            f"({res['kb_per_device']:.1f} kB/device), {res['msgs_per_s']:,.0f} msg/s"
        )
    return out
