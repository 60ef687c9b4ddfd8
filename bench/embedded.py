"""4. The embedded no-install broker (`python -m stack.embedded_broker`, amqtt, MQTT 3.1.1):
sustainable rate and p99 of a publish→subscribe round trip, against Mosquitto (shipped config,
and with the once-a-second autosave) driven by the same worker, in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from adapters import credentials
from bench.common import CpuSampler, Workspace, log, python_module, terminating
from stack.ports import free_port, wait_for_port

MAX_P99_MS = 1000.0


def _rtt(
    port: int, creds: Any, device_id: str, rate: float, amount: float, pid: int
) -> dict[str, Any]:
    proc = python_module(
        "bench.rtt_worker",
        str(port),
        device_id,
        creds.devices[device_id],
        creds.backend_password,
        str(rate),
        str(amount),
        stdout=subprocess.PIPE,
    )
    cpu = CpuSampler({"broker": pid, "worker": proc.pid})
    with terminating(proc):
        out, _ = proc.communicate(timeout=max(120, amount * 3))
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res["cpu_cores"] = cpu.cores()
    res["sustained"] = (
        bool(
            res["lost"] == 0 and res["offered_rate"] >= 0.97 * rate and res["p99_ms"] <= MAX_P99_MS
        )
        if rate > 0
        else None
    )
    return res


def _start(ws: Workspace, name: str, creds_dir: Path) -> tuple[int, subprocess.Popen[Any] | None]:
    if name == "embedded":
        port = free_port()
        log_file = (ws.base / "embedded.log").open("ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stack.embedded_broker",
                "--port",
                str(port),
                "--credentials",
                str(credentials.broker_file(creds_dir)),
                "--log-level",
                "WARNING",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port)
        return port, proc
    overrides = (
        {"autosave_on_changes": "false", "autosave_interval": "1"} if name != "mosquitto" else None
    )
    broker = ws.broker(creds_dir, overrides)
    return broker.port, broker.proc


def run(parent: Path, quick: bool) -> dict[str, Any]:
    rates = [500, 1_000] if quick else [250, 500, 1_000, 1_500, 2_000, 2_500, 3_000]
    seconds = 3.0 if quick else 6.0
    burst = 2_000 if quick else 10_000
    ws = Workspace.create("embedded", parent)
    out: dict[str, Any] = {"rates": rates, "seconds": seconds, "burst": burst, "brokers": {}}
    try:
        fleet, _ = ws.fleet()
        creds, creds_dir = ws.credentials(fleet)
        device_id = next(d.id for d in fleet.devices if d.kind == "gate")
        for name in ("embedded", "mosquitto", "mosquitto-autosave-1s"):
            port, proc = _start(ws, name, creds_dir)
            assert proc is not None
            res: dict[str, Any] = {"steps": []}
            with terminating(proc):
                for rate in rates:
                    log(f"embedded: {name} round trip at {rate:,} msg/s for {seconds:.0f} s")
                    step = _rtt(port, creds, device_id, rate, seconds, proc.pid)
                    res["steps"].append(step)
                    log(
                        f"  received {step['received_rate']:,.0f}/s, lost {step['lost']}, "
                        f"p50 {step['p50_ms']:.1f} ms, p99 {step['p99_ms']:.1f} ms"
                    )
                    if not step["sustained"]:
                        break
                log(f"embedded: {name} burst of {burst:,} (as fast as one publisher can)")
                res["burst"] = _rtt(port, creds, device_id, 0, burst, proc.pid)
                log(
                    f"  received {res['burst']['received_rate']:,.0f}/s, lost "
                    f"{res['burst']['lost']}"
                )
            passing = [s["rate"] for s in res["steps"] if s["sustained"]]
            res["sustainable_rate"] = max(passing, default=0)
            out["brokers"][name] = res
        return out
    finally:
        ws.close()
