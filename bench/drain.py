"""1. Ingest drain: 100,000 QoS-1 envelopes queued in a persistent session, drained by the
backend (into SQLite), by a bare paho client with manual acks, and by `mosquitto_sub`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import profile
from bench.common import CpuSampler, Workspace, emission_pool, log, python_module
from contracts.envelope import Envelope, new_id
from contracts.fleet import Fleet
from contracts.topics import Topic
from contracts.validation import dumps
from stack.broker import BrokerProcess
from stack.credentials import Credentials
from tests.helpers import BackendProcess, wait_until

BACKEND_TARGET_RATIO = 0.6


def backlog_devices(fleet: Fleet) -> Fleet:
    """A few device clients: the first device of each kind of the default street."""
    seen: dict[str, Any] = {}
    for d in fleet.devices:
        seen.setdefault(d.kind, d)
    return fleet.model_copy(update={"devices": list(seen.values())})


def build_backlog(fleet: Fleet, n: int) -> list[tuple[str, str, bytes]]:
    """(device id, topic, payload) in the order the devices would have sent them during an
    outage that has just ended: simulated instants shifted so that the last one is now."""
    pool = emission_pool(fleet, n)
    shift = datetime.now(UTC) - pool[-1][1]
    seq: dict[str, int] = {}
    out = []
    for i, due, em in pool:
        spec = fleet.devices[i]
        env = Envelope(
            event_id=new_id(),
            device_id=spec.id,
            kind=spec.kind,
            type=em.type,
            seq=seq.get(spec.id, 0),
            ts=due + shift,
            correlation_id=em.correlation_id,
            data=em.data.model_dump(mode="json", exclude_none=True),
        )
        seq[spec.id] = seq.get(spec.id, 0) + 1
        out.append((spec.id, str(Topic(spec.kind, spec.id, em.channel)), dumps(env)))
    return out


def publish_backlog(port: int, creds: Credentials, backlog: list[tuple[str, str, bytes]]) -> float:
    """Publish at QoS 1 from each device's own client (its own credentials), wait for every
    PUBACK; returns messages/s."""
    acked = 0
    lock = threading.Lock()
    all_acked = threading.Event()

    def on_publish(*_a: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1
            if acked >= len(backlog):
                all_acked.set()

    clients: dict[str, mqtt.Client] = {}
    for device_id in sorted({d for d, _, _ in backlog}):
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{device_id}", protocol=mqtt.MQTTv5
        )
        c.username_pw_set(device_id, creds.devices[device_id])
        c.max_inflight_messages_set(100)
        c.on_publish = on_publish
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients[device_id] = c
    wait_until(lambda: all(c.is_connected() for c in clients.values()), timeout=15)
    t0 = time.monotonic()
    for device_id, topic, payload in backlog:
        clients[device_id].publish(topic, payload, qos=1)
    if not all_acked.wait(300):
        raise RuntimeError(f"only {acked}/{len(backlog)} publishes acknowledged")
    rate = len(backlog) / (time.monotonic() - t0)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()
    return rate


def _rate(n: int, first: float, last: float) -> float:
    return (n - 1) / (last - first) if last > first else float("nan")


def drain_paho(broker: BrokerProcess, creds: Credentials, backlog: list[Any]) -> dict[str, Any]:
    args = [str(broker.port), creds.backend_password, "bench-paho-drain", str(len(backlog))]
    _run_worker("create", args)
    publish_backlog(broker.port, creds, backlog)
    t0 = time.monotonic()
    proc = python_module("bench.drain_worker", "drain", *args, stdout=subprocess.PIPE)
    cpu = CpuSampler({"consumer": proc.pid, "mosquitto": broker.proc.pid if broker.proc else 0})
    out, _ = proc.communicate(timeout=600)
    wall = time.monotonic() - t0
    res = json.loads(out.strip().splitlines()[-1])
    return {
        "consumer": "bare paho 2.x, manual ack",
        "count": res["count"],
        "rate": _rate(res["count"], res["first"], res["last"]),
        "wall_s": wall,
        "cpu_cores": cpu.cores(),
    }


def _run_worker(mode: str, args: list[str]) -> None:
    proc = python_module("bench.drain_worker", mode, *args, stdout=subprocess.PIPE)
    proc.communicate(timeout=60)
    if proc.returncode:
        raise RuntimeError(f"drain worker {mode} failed")


def _mosquitto_sub(port: int, password: str, *extra: str) -> list[str]:
    from backend.ingest import INGEST_CHANNELS
    from contracts.topics import subscription

    cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", "backend", "-P", password,
           "-i", "bench-mosquitto-sub-drain", "-c", "-q", "1", *extra]
    for ch in INGEST_CHANNELS:
        cmd += ["-t", subscription(ch)]
    return cmd


def drain_mosquitto_sub(
    broker: BrokerProcess, creds: Credentials, backlog: list[Any]
) -> dict[str, Any]:
    n = len(backlog)
    subprocess.run(_mosquitto_sub(broker.port, creds.backend_password, "-E"), check=True,
                   timeout=30, capture_output=True)
    publish_backlog(broker.port, creds, backlog)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        _mosquitto_sub(broker.port, creds.backend_password, "-C", str(n)),
        stdout=subprocess.PIPE,
        bufsize=1 << 20,
    )
    cpu = CpuSampler({"consumer": proc.pid, "mosquitto": broker.proc.pid if broker.proc else 0})
    assert proc.stdout is not None
    count, first, last = 0, 0.0, 0.0
    for _line in proc.stdout:
        now = time.time()
        if not count:
            first = now
        count += 1
        last = now
    proc.wait(60)
    return {
        "consumer": "mosquitto_sub -c -q 1",
        "count": count,
        "rate": _rate(count, first, last),
        "wall_s": time.monotonic() - t0,
        "cpu_cores": cpu.cores(),
    }


def _db_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM event").fetchone()[0])


def drain_backend(
    ws: Workspace,
    broker: BrokerProcess,
    creds: Credentials,
    creds_dir: Path,
    fleet_file: Path,
    backlog: list[Any],
    profile_to: Path | None = None,
) -> dict[str, Any]:
    n = len(backlog)
    db = ws.base / "drain.db"
    backend = BackendProcess(
        broker.port,
        creds_dir,
        f"sqlite:///{db}",
        ws.base / "backend",
        extra_env={"LIJIA_FLEET_FILE": str(fleet_file)},
    )
    # Once, to create the schema and the persistent ingest session, as in production.
    backend.start()
    base_stored = backend.health()["stored"]
    backend.stop()
    before = _db_count(db)
    publish_backlog(broker.port, creds, backlog)
    t_spawn = time.monotonic()
    backend.start(wait_broker=False)
    assert backend.proc is not None
    cpu = CpuSampler({"backend": backend.proc.pid,
                      "mosquitto": broker.proc.pid if broker.proc else 0})
    spy = profile.record(backend.proc.pid, 600, profile_to) if profile_to else None
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        h = backend.health()
        stored = h["stored"] + h["duplicates"] + h["dead_lettered"]
        samples.append((time.monotonic(), stored))
        if stored >= n:
            break
        time.sleep(0.1)
    t_done = samples[-1][0]
    cores = cpu.cores()
    health = backend.health()
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes what it has
        spy.wait(30)
    backend.stop()
    first = next((s for s in samples if s[1] > base_stored), samples[-1])
    rate = (n - first[1]) / (t_done - first[0]) if t_done > first[0] else float("nan")
    return {
        "consumer": "backend (ingest → SQLite)",
        "count": _db_count(db) - before,
        "stored": health["stored"],
        "duplicates": health["duplicates"],
        "dead_lettered": health["dead_lettered"],
        "rate": rate,
        "wall_s": t_done - t_spawn,
        "rate_incl_startup": n / (t_done - t_spawn),
        "cpu_cores": cores,
        "db": str(db),
    }


def run(parent: Path, quick: bool) -> dict[str, Any]:
    n = 20_000 if quick else 100_000
    ws = Workspace.create("drain", parent)
    try:
        fleet, fleet_file = ws.fleet()
        creds, creds_dir = ws.credentials(fleet)
        broker = ws.broker(creds_dir)
        log(f"drain: building a backlog of {n:,} envelopes from {len(backlog_devices(fleet).devices)} devices")
        backlog = build_backlog(backlog_devices(fleet), n)
        sizes = [len(p) for _, _, p in backlog]
        results = {}
        log("drain: mosquitto_sub baseline")
        results["mosquitto_sub"] = drain_mosquitto_sub(broker, creds, backlog)
        log(f"  {results['mosquitto_sub']['rate']:,.0f} msg/s")
        log("drain: bare paho baseline")
        results["paho"] = drain_paho(broker, creds, backlog)
        log(f"  {results['paho']['rate']:,.0f} msg/s")
        log("drain: backend")
        results["backend"] = drain_backend(ws, broker, creds, creds_dir, fleet_file, backlog)
        log(f"  {results['backend']['rate']:,.0f} msg/s")
        out: dict[str, Any] = {
            "n": n,
            "payload_bytes_mean": sum(sizes) / len(sizes),
            "devices": len({d for d, _, _ in backlog}),
            "results": results,
            "ratio_backend_paho": results["backend"]["rate"] / results["paho"]["rate"],
            "ratio_backend_mosquitto_sub": results["backend"]["rate"]
            / results["mosquitto_sub"]["rate"],
            "ratio_paho_mosquitto_sub": results["paho"]["rate"] / results["mosquitto_sub"]["rate"],
        }
        # A second, profiled drain (py-spy costs the target a little): where the backend's time
        # goes. Not used for the figures above.
        if profile.py_spy():
            pn = min(n, 50_000)
            log(f"drain: profiling the backend draining {pn:,} (py-spy)")
            raw = ws.base / "drain-profile.txt"
            prof = drain_backend(ws, broker, creds, creds_dir, fleet_file,
                                 build_backlog(backlog_devices(fleet), pn), profile_to=raw)
            summary = profile.summarise(raw)
            out["profile"] = {
                "n": pn,
                "rate_under_profiler": prof["rate"],
                "text": summary.as_text("backend while draining") if summary else None,
            }
        return out
    finally:
        ws.close()
