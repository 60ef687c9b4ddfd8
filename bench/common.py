"""Shared machinery for the benchmarks: a workspace with a scaled fleet, credentials and a real
Mosquitto, process sampling, percentiles, and realistic device emissions.

Nothing here is product code: it only drives the product (stack/, backend/, devices/) as a user
would, with the shipped broker_config/ and the backend's own settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from adapters import credentials
from adapters.fleet import load_fleet
from contracts.fleet import Fleet
from devices.behaviour import Emission
from stack.broker import BrokerProcess, generate_credentials, mosquitto_binary
from stack.ports import free_port
from stack.processes import BackendProcess, stop_child

ROOT = Path(__file__).resolve().parent.parent
# A Monday 08:00 in Chongqing: the street's morning rush, every kind busy.
SIM_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def raise_nofile(want: int = 65_536) -> int:
    """Thousands of MQTT sessions need thousands of descriptors, in this process, in the worker
    processes and in Mosquitto (children inherit the limit)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except OSError:
        nr_open = hard
    target = min(want, nr_open) if os.geteuid() == 0 else min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not found"


def machine_info() -> dict[str, Any]:
    import sqlite3
    from importlib.metadata import version

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip()
    pkgs = {}
    for name in ("paho-mqtt", "fastapi", "uvicorn", "sqlalchemy", "pydantic", "amqtt", "httpx"):
        try:
            pkgs[name] = version(name)
        except Exception:
            pkgs[name] = "?"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mosquitto": _version([mosquitto_binary() or "mosquitto", "-h"]),
        "sqlite": sqlite3.sqlite_version,
        "packages": pkgs,
        "git": commit + (" (with uncommitted changes)" if dirty else ""),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


# -- workspace ---------------------------------------------------------------------------------
@dataclass
class Workspace:
    """A temporary folder for one benchmark: fleet file, credentials, broker, databases."""

    name: str
    base: Path
    brokers: list[BrokerProcess] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, parent: Path) -> Workspace:
        base = parent / name
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        return cls(name, base)

    def fleet(self, count: int | None = None) -> tuple[Fleet, Path]:
        """The default street (scaled to `count` devices) written where the backend reads it."""
        fleet = load_fleet()
        if count is not None:
            fleet = fleet.scaled(count)
        path = self.base / "fleet.yaml"
        path.write_text(
            yaml.safe_dump(fleet.model_dump(mode="json"), allow_unicode=True), encoding="utf-8"
        )
        return fleet, path

    def credentials(self, fleet: Fleet) -> tuple[credentials.Credentials, Path]:
        out = self.base / "credentials"
        return generate_credentials(fleet, out, keep_existing=False), out

    def broker(self, creds_dir: Path, overrides: dict[str, str] | None = None) -> BrokerProcess:
        """The shipped broker_config/ on a free port; `overrides` change single settings."""
        if mosquitto_binary() is None:
            raise SystemExit("Mosquitto is not installed: apt-get install mosquitto")
        folder = self.base / f"broker-{len(self.brokers)}"
        broker: BrokerProcess
        if overrides:
            broker = ConfiguredBroker(free_port(), folder, creds_dir, overrides=overrides).start()
        else:
            broker = BrokerProcess(free_port(), folder, creds_dir).start()
        self.brokers.append(broker)
        return broker

    def backend(
        self, broker_port: int, creds_dir: Path, db: Path, fleet_file: Path
    ) -> BackendProcess:
        """The real backend (not started yet) on SQLite file `db`, with this workspace's fleet."""
        return BackendProcess(
            broker_port,
            creds_dir,
            f"sqlite:///{db}",
            self.base / "backend",
            extra_env={"LIJIA_FLEET_FILE": str(fleet_file)},
        )

    def close(self) -> None:
        for broker in self.brokers:
            broker.stop()
        self.brokers.clear()


# -- CPU and memory of processes ---------------------------------------------------------------
class CpuSampler:
    """CPU seconds used by some processes (and their threads) over a window, as cores busy."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self.t0 = time.monotonic()
        self.c0 = {name: self._cpu(p) for name, p in self.procs.items()}

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        try:
            t = proc.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    def cores(self) -> dict[str, float]:
        dt = max(time.monotonic() - self.t0, 1e-9)
        return {
            name: round((self._cpu(p) - self.c0[name]) / dt, 3) for name, p in self.procs.items()
        }


def rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


# -- realistic device traffic ------------------------------------------------------------------
def emission_pool(
    fleet: Fleet, count: int, start: datetime = SIM_START
) -> list[tuple[int, datetime, Emission]]:
    """`count` emissions of the street (devices/street.py: every behaviour and the journeys), in
    simulated-time order from `start` (device index, simulated instant, emission): the street's
    own mix of kinds, event types and telemetry, as FleetRunner would publish them."""
    from devices.street import Street

    street = Street(fleet)
    street.start(start)
    out: list[tuple[int, datetime, Emission]] = []
    while len(out) < count:
        out.extend(street.step())
    return out[:count]


# -- helpers for worker processes --------------------------------------------------------------
def python_module(module: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        text=True,
        **popen,
    )


def read_json_lines(proc: subprocess.Popen[str], into: list[dict[str, Any]]) -> threading.Thread:
    """Collect a worker's JSON lines (its progress and result) in a thread."""

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    into.append(json.loads(line))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def wait_for_event(
    proc: subprocess.Popen[str], lines: list[dict[str, Any]], event: str, died: str, poll: float
) -> None:
    """Wait until a worker has printed the JSON line {"event": event, ...}; raise
    RuntimeError(died) if it exits first."""
    while not any(x.get("event") == event for x in lines):
        if proc.poll() is not None:
            raise RuntimeError(died)
        time.sleep(poll)


@contextlib.contextmanager
def terminating(
    proc: subprocess.Popen[Any], timeout: float = 15
) -> Iterator[subprocess.Popen[Any]]:
    """Stop exactly this child when the block ends (SIGTERM, then SIGKILL)."""
    try:
        yield proc
    finally:
        stop_child(proc, signal.SIGTERM, timeout)


def new_workdir(keep: bool) -> Path:
    base = Path(tempfile.mkdtemp(prefix="lijia-bench-"))
    base.chmod(0o755)
    return base


@dataclass
class ConfiguredBroker(BrokerProcess):
    """The shipped broker_config/ (rendered like stack.broker does) with a few settings changed,
    e.g. to pre-fill a queue faster than the shipped autosave allows. Stops only its own pid."""

    overrides: dict[str, str] = field(default_factory=dict)

    def start(self) -> ConfiguredBroker:
        from stack.broker import render_config
        from stack.ports import wait_for_port

        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / "data"
        data_dir.mkdir(exist_ok=True)
        lines = []
        for line in render_config(
            port=self.port, credentials_dir=self.credentials_dir, data_dir=data_dir
        ).splitlines():
            key = line.split(" ", 1)[0]
            lines.append(f"{key} {self.overrides[key]}" if key in self.overrides else line)
        self.conf_path.write_text("\n".join(lines) + "\n")
        with self.log_path.open("ab") as logf:
            self.proc = subprocess.Popen(
                [mosquitto_binary() or "mosquitto", "-c", str(self.conf_path)],
                stdout=logf,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)
        return self


class LoadMonitor:
    """How busy the machine is, and how much of it is not this benchmark: other people's tests
    on the same two cores change the numbers, so each benchmark reports the load beside it."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (t, system cores, ours)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0))

    def _ours(self, seen: dict[int, float]) -> float:
        """CPU seconds used since the last call by this process and all its descendants."""
        used = 0.0
        procs = [self._me]
        with contextlib.suppress(psutil.Error):
            procs += self._me.children(recursive=True)
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total = t.user + t.system
            # A process that appeared since the last call used all its CPU time since then.
            used += total - seen.get(p.pid, 0.0 if seen else total)
            seen[p.pid] = total
        return used

    def _run(self) -> None:
        seen: dict[int, float] = {}
        self._ours(seen)
        last_t, last_busy = time.monotonic(), self._busy()
        while not self._stop.wait(self.interval):
            now, busy = time.monotonic(), self._busy()
            ours = self._ours(seen)
            dt = now - last_t
            self.samples.append((now, (busy - last_busy) / dt, ours / dt))
            last_t, last_busy = now, busy

    def start(self) -> LoadMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def window(self, t0: float, t1: float) -> dict[str, float]:
        xs = [(s, o) for t, s, o in self.samples if t0 <= t <= t1]
        if not xs:
            return {}
        system = sum(s for s, _ in xs) / len(xs)
        ours = sum(o for _, o in xs) / len(xs)
        return {
            "system_cores": round(system, 2),
            "bench_cores": round(ours, 2),
            "other_cores": round(max(0.0, system - ours), 2),
        }

    def wait_quiet(self, max_wait: float, threshold: float = 0.3, span: float = 5.0) -> float:
        """Wait (up to `max_wait` s) until others use under `threshold` cores for `span` s;
        returns their average load over the last span."""
        deadline = time.monotonic() + max_wait
        while True:
            time.sleep(span)
            now = time.monotonic()
            other = self.window(now - span, now).get("other_cores", 0.0)
            if other < threshold or now >= deadline:
                return other
            log(f"the machine is busy (other processes use {other:.1f} cores); waiting")
