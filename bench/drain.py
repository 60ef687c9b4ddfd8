"""1. Ingest drain: 100,000 QoS-1 envelopes queued in a persistent session, drained by the
backend (into SQLite), by a bare paho client with manual acks, and by `mosquitto_sub`."""

from __future__ import annotations

import functools
import json
import resource
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.credentials import Credentials
from bench import profile
from bench.backlog import backlog_devices, build_backlog, publish_backlog
from bench.common import (
    ConfiguredBroker,
    CpuSampler,
    Workspace,
    log,
    python_module,
)
from stack.broker import BrokerProcess
from stack.ports import free_port

# Only while pre-filling: the shipped `autosave_on_changes true` + `autosave_interval 1` rewrites
# the whole persistence file after every queued message, which makes queueing O(n²) (measured
# below as `queueing_shipped`). The queue is then handed to the shipped config by a graceful
# restart (SIGTERM saves, the restart loads it), so every drain runs on the shipped
# broker_config/.
PREFILL_OVERRIDES = {"autosave_on_changes": "false", "autosave_interval": "3600"}


class QueueBroker:
    """One broker folder and port; pre-fill with PREFILL_OVERRIDES, drain with the shipped
    config."""

    def __init__(
        self, ws: Workspace, creds_dir: Path, name: str, drain_overrides: dict[str, str] | None
    ) -> None:
        self.drain_overrides = drain_overrides
        self.port = free_port()
        self.workdir = ws.base / name
        self.creds_dir = creds_dir
        self.current: BrokerProcess | None = None

    def prefill_mode(self) -> BrokerProcess:
        self.stop()
        self.current = ConfiguredBroker(
            self.port, self.workdir, self.creds_dir, overrides=PREFILL_OVERRIDES
        ).start()
        return self.current

    def shipped_mode(self) -> BrokerProcess:
        """The config the queue is drained with: shipped, or shipped with `drain_overrides`."""
        self.stop()
        if self.drain_overrides:
            self.current = ConfiguredBroker(
                self.port, self.workdir, self.creds_dir, overrides=self.drain_overrides
            ).start()
        else:
            self.current = BrokerProcess(self.port, self.workdir, self.creds_dir).start()
        return self.current

    @property
    def pid(self) -> int:
        return self.current.proc.pid if self.current and self.current.proc else 0

    def stop(self) -> None:
        if self.current:
            self.current.stop(timeout=60)
            self.current = None


@dataclass(frozen=True)
class Setup:
    """What every drain uses besides its own broker and backlog: the workspace, the street's
    credentials (on disk and loaded) and the fleet file the backend reads."""

    ws: Workspace
    creds: Credentials
    creds_dir: Path
    fleet_file: Path


Drain = Callable[[QueueBroker, Setup, list[Any]], dict[str, Any]]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _rate(n: int, first: float, last: float) -> float:
    return (n - 1) / (last - first) if last > first else float("nan")


def drain_paho(broker: QueueBroker, setup: Setup, backlog: list[Any]) -> dict[str, Any]:
    creds = setup.creds
    args = [str(broker.port), creds.backend_password, "bench:paho-drain", str(len(backlog))]
    broker.prefill_mode()
    _run_worker("create", args)
    publish_backlog(broker.port, creds, backlog)
    broker.shipped_mode()
    t0, c0 = time.monotonic(), _children_cpu()
    proc = python_module("bench.drain_worker", "drain", *args, stdout=subprocess.PIPE)
    cpu = CpuSampler({"mosquitto": broker.pid})
    out, _ = proc.communicate(timeout=600)
    wall = time.monotonic() - t0
    cores = {**cpu.cores(), "consumer": round((_children_cpu() - c0) / wall, 3)}
    res = json.loads(out.strip().splitlines()[-1])
    return {
        "consumer": "bare paho 2.x, manual ack",
        "count": res["count"],
        "rate": _rate(res["count"], res["first"], res["last"]),
        "wall_s": wall,
        "cpu_cores": cores,
    }


def _run_worker(mode: str, args: list[str]) -> None:
    proc = python_module("bench.drain_worker", mode, *args, stdout=subprocess.PIPE)
    proc.communicate(timeout=60)
    if proc.returncode:
        raise RuntimeError(f"drain worker {mode} failed")


def _mosquitto_sub(port: int, password: str, *extra: str) -> list[str]:
    from backend.ingest import INGEST_CHANNELS
    from contracts.topics import subscription

    cmd = [
        "mosquitto_sub",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-u",
        "backend",
        "-P",
        password,
        "-i",
        "bench:mosquitto-sub-drain",
        "-c",
        "-q",
        "1",
        *extra,
    ]
    for ch in INGEST_CHANNELS:
        cmd += ["-t", subscription(ch)]
    return cmd


def _create_session(port: int, password: str) -> None:
    """The persistent session of `mosquitto_sub -c`, subscribed and left: the queue to fill."""
    cmd = _mosquitto_sub(port, password, "-E")
    subprocess.run(cmd, check=True, timeout=30, capture_output=True)


def drain_mosquitto_sub(broker: QueueBroker, setup: Setup, backlog: list[Any]) -> dict[str, Any]:
    creds, n = setup.creds, len(backlog)
    broker.prefill_mode()
    _create_session(broker.port, creds.backend_password)
    publish_backlog(broker.port, creds, backlog)
    broker.shipped_mode()
    t0, c0 = time.monotonic(), _children_cpu()
    proc = subprocess.Popen(
        _mosquitto_sub(broker.port, creds.backend_password, "-C", str(n)),
        stdout=subprocess.PIPE,
        bufsize=1 << 20,
    )
    cpu = CpuSampler({"mosquitto": broker.pid})
    assert proc.stdout is not None
    count, first, last = 0, 0.0, 0.0
    for _line in proc.stdout:
        now = time.time()
        if not count:
            first = now
        count += 1
        last = now
    proc.wait(60)
    wall = time.monotonic() - t0
    return {
        "consumer": "mosquitto_sub -c -q 1",
        "count": count,
        "rate": _rate(count, first, last),
        "wall_s": wall,
        "cpu_cores": {**cpu.cores(), "consumer": round((_children_cpu() - c0) / wall, 3)},
    }


def drain_prototype(broker: QueueBroker, setup: Setup, backlog: list[Any]) -> dict[str, Any]:
    args = [
        str(broker.port),
        str(setup.creds_dir),
        f"sqlite:///{setup.ws.base / 'prototype.db'}",
        str(setup.fleet_file),
        "bench:ingest-prototype",
    ]
    broker.prefill_mode()
    _run_prototype([*args, "0"])
    publish_backlog(broker.port, setup.creds, backlog)
    broker.shipped_mode()
    t0 = time.monotonic()
    proc = python_module("bench.ingest_prototype", *args, str(len(backlog)), stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=600)
    res = json.loads(out.strip().splitlines()[-1])
    return {
        "consumer": "single-threaded ingest prototype (bench/, not product code)",
        "count": res["count"],
        "batches": res["batches"],
        "cpu_cores": {"consumer": res["cpu_s"] / max(res["last"] - res["first"], 1e-9)},
        "rate": _rate(res["count"], res["first"], res["last"]),
        "wall_s": time.monotonic() - t0,
    }


def _run_prototype(args: list[str]) -> None:
    proc = python_module("bench.ingest_prototype", *args, stdout=subprocess.PIPE)
    proc.communicate(timeout=120)
    if proc.returncode:
        raise RuntimeError("ingest prototype failed to create its session")


def _db_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM event").fetchone()[0])


def drain_backend(
    broker: QueueBroker,
    setup: Setup,
    backlog: list[Any],
    profile_to: Path | None = None,
    db_name: str = "drain.db",
) -> dict[str, Any]:
    n = len(backlog)
    db = setup.ws.base / db_name
    backend = setup.ws.backend(broker.port, setup.creds_dir, db, setup.fleet_file)
    # Once, to create the schema and the persistent ingest session, as in production.
    broker.prefill_mode()
    backend.start()
    backend.stop()
    before = _db_count(db)
    publish_backlog(broker.port, setup.creds, backlog)
    broker.shipped_mode()
    t_spawn = time.monotonic()
    backend.start(wait_broker=False)
    assert backend.proc is not None
    cpu = CpuSampler({"backend": backend.proc.pid, "mosquitto": broker.pid})
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
    first = next((s for s in samples if s[1] > 0), samples[-1])
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


def queueing_shipped(
    ws: Workspace, creds: Credentials, creds_dir: Path, backlog: list[Any]
) -> dict[str, Any]:
    """How fast the shipped broker config takes QoS-1 messages for an offline persistent session
    (the backend away), against the pre-fill config, for the same first messages."""
    out: dict[str, Any] = {"n": len(backlog)}
    for name, mode in (("shipped", "shipped_mode"), ("prefill_config", "prefill_mode")):
        qb = QueueBroker(ws, creds_dir, f"queueing-{name}", None)
        getattr(qb, mode)()
        _create_session(qb.port, creds.backend_password)
        out[name] = publish_backlog(qb.port, creds, backlog)
        qb.stop()
    return out


# The drain is measured twice: with the broker as shipped, and with its autosave once a second
# (`autosave_on_changes false`), where the broker is not the bottleneck and the consumers'
# own speed shows. The headline ratio (backend / paho) is the second one.
DRAIN_CONFIGS: dict[str, dict[str, str] | None] = {
    "autosave-1s": {"autosave_on_changes": "false", "autosave_interval": "1"},
    "shipped": None,
}


def run(parent: Path, quick: bool) -> dict[str, Any]:
    n = 5_000 if quick else 100_000
    ws = Workspace.create("drain", parent)
    brokers: list[QueueBroker] = []

    def measure(cfg: str, name: str, drain: Drain, backlog: list[Any]) -> dict[str, Any]:
        """One consumer draining its own queue on its own broker (drain config `cfg`)."""
        qb = QueueBroker(ws, setup.creds_dir, f"broker-{cfg}-{name}", DRAIN_CONFIGS[cfg])
        brokers.append(qb)
        result = drain(qb, setup, backlog)
        qb.stop()
        log(f"  {result['rate']:,.0f} msg/s")
        return result

    try:
        fleet, fleet_file = ws.fleet()
        creds, creds_dir = ws.credentials(fleet)
        setup = Setup(ws, creds, creds_dir, fleet_file)
        devices = backlog_devices(fleet)
        log(f"drain: building a backlog of {n:,} envelopes from {len(devices.devices)} devices")
        backlog = build_backlog(devices, n)
        sizes = [len(p) for _, _, p in backlog]
        by_config: dict[str, dict[str, Any]] = {}
        for cfg in DRAIN_CONFIGS:
            results: dict[str, Any] = {}
            by_config[cfg] = results
            for name, fn in (("mosquitto_sub", drain_mosquitto_sub), ("paho", drain_paho)):
                log(f"drain[{cfg}]: {name} baseline")
                results[name] = measure(cfg, name, fn, backlog)
            log(f"drain[{cfg}]: backend")
            backend = functools.partial(drain_backend, db_name=f"drain-{cfg}.db")
            b = results["backend"] = measure(cfg, "backend", backend, backlog)
            log(
                f"  stored {b['stored']:,}, duplicates {b['duplicates']:,}, dead letters "
                f"{b['dead_lettered']:,}"
            )
            if b["dead_lettered"] or b["duplicates"]:
                log("  WARNING: not every message was stored as new: the rate is not comparable")
            if not quick and cfg == "autosave-1s":
                log(f"drain[{cfg}]: single-threaded ingest prototype (same write_batch)")
                results["prototype"] = measure(cfg, "prototype", drain_prototype, backlog)
        results = by_config["autosave-1s"]
        out: dict[str, Any] = {
            "n": n,
            "payload_bytes_mean": sum(sizes) / len(sizes),
            "devices": len({d for d, _, _ in backlog}),
            "headline_config": "autosave-1s",
            "results": results,
            "by_config": by_config,
            "ratio_backend_paho": results["backend"]["rate"] / results["paho"]["rate"],
        }
        qn = 500 if quick else 3_000
        log(f"drain: queueing {qn:,} messages for an offline session, shipped vs pre-fill config")
        out["queueing"] = queueing_shipped(ws, creds, creds_dir, backlog[:qn])
        # A second, profiled drain (py-spy costs the target a little): where the backend's time
        # goes. Not used for the figures above.
        if profile.py_spy() and not quick:
            pn = min(n, 20_000)
            log(f"drain: profiling the backend draining {pn:,} (py-spy, autosave-1s broker)")
            raw = ws.base / "drain-profile.txt"
            profiled = functools.partial(drain_backend, profile_to=raw, db_name="drain-profile.db")
            prof = measure("autosave-1s", "profile", profiled, build_backlog(devices, pn))
            summary = profile.summarise(raw)
            out["profile"] = {
                "n": pn,
                "rate_under_profiler": prof["rate"],
                "text": summary.as_text("backend while draining") if summary else None,
                "shares": summary.shares(profile.INGEST_FUNCS) if summary else {},
            }
        return out
    finally:
        for qb in brokers:
            qb.stop()
        ws.close()
