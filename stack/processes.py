"""The backend, a throwaway PostgreSQL and the simulator as real child processes (tests, bench)."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stack.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
# The API keys a BackendProcess is started with: one operator, one read-only.
API_KEY = "test-operator-key"
READ_KEY = "test-read-key"


def stop_child(proc: subprocess.Popen[Any], sig: signal.Signals, timeout: float) -> None:
    """Send `sig` to this one child if it still runs; SIGKILL it if it has not exited within
    `timeout` s. Never touches any other process."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value or raise with a clear message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    value = predicate()
    if value:
        return value
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass
class BackendProcess:
    """`python -m backend` as a real process we can SIGKILL and restart."""

    mqtt_port: int
    credentials_dir: Path
    database_url: str
    workdir: Path
    mqtt_protocol: str = "5"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LIJIA_MQTT_HOST": "127.0.0.1",
            "LIJIA_MQTT_PORT": str(self.mqtt_port),
            "LIJIA_MQTT_PROTOCOL": self.mqtt_protocol,
            "LIJIA_CREDENTIALS_DIR": str(self.credentials_dir),
            "LIJIA_DATABASE_URL": self.database_url,
            "LIJIA_API_PORT": str(self.port),
            "LIJIA_API_KEYS": json.dumps({API_KEY: "operate", READ_KEY: "read"}),
            "LIJIA_COMMAND_TIMEOUT_S": "5",
            **self.extra_env,
        }

    def start(self, wait_broker: bool = True) -> BackendProcess:
        # A free port can be taken by another process between our probe and the bind: retry.
        for _attempt in range(3):
            try:
                return self._start(wait_broker)
            except AssertionError:
                if "address already in use" not in self.log():
                    raise
                self.stop()
                (self.workdir / "backend.log").write_text("")
                self.port = free_port()
        return self._start(wait_broker)

    def _start(self, wait_broker: bool) -> BackendProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "backend.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend"],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy if wait_broker else self._answers, timeout=30)
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"backend exited: {self.log()[-2000:]}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _healthy(self) -> bool:
        return self._answers() and self.health()["broker_connected"]

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/health", timeout=5).json()  # type: ignore[no-any-return]

    def log(self) -> str:
        return (self.workdir / "backend.log").read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc:
            stop_child(self.proc, sig, timeout=15)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def get(self, path: str, key: str | None = READ_KEY, **params: Any) -> Any:
        """GET with a read key (reads need one: LIJIA_OPEN_READS), raising on an error answer."""
        params = {k: v for k, v in params.items() if v is not None}
        headers = {"X-API-Key": key} if key else {}
        resp = httpx.get(self.url + path, params=params, headers=headers, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: dict[str, Any], key: str | None = API_KEY) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=10)

    def event_ids(self, **params: Any) -> list[str]:
        """Every stored event id (all pages)."""
        ids: list[str] = []
        cursor = None
        while True:
            page = self.get("/events", limit=1000, cursor=cursor, **params)
            ids += [e["event_id"] for e in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids


# -- PostgreSQL --------------------------------------------------------------------------------
def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port; we stop only this one."""

    datadir: Path
    port: int = field(default_factory=free_port)

    def _as_owner(self, cmd: list[str]) -> list[str]:
        # initdb refuses to run as root; run the cluster as user postgres then.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> PostgresServer:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found: run the README's test command")
        self.bindir = bindir
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.datadir, pg.pw_uid, pg.pw_gid)
            os.chmod(self.datadir.parent, 0o755)
        subprocess.run(
            self._as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            self._as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-o",
                    opts,
                    "-l",
                    str(self.datadir / "server.log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        wait_for_port(self.port)
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = str(self.bindir / "pg_ctl")
        log = str(self.datadir / "server.log")
        subprocess.run(
            self._as_owner([pg_ctl, "-D", str(self.datadir), "-o", opts, "-l", log, "-w", "start"]),
            check=True,
            capture_output=True,
        )
        wait_for_port(self.port)

    def sql(self, db: str, statements: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname={db}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statements)

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]
            ),
            capture_output=True,
        )


def clean_env() -> dict[str, str]:
    """This environment without LIJIA_ settings (a child takes only what it is given)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LIJIA_")}


def devices_command(port: int, creds_dir: Path, *args: str) -> list[str]:
    """The command line of `python -m devices run` against the broker on `port`."""
    return [sys.executable, "-m", "devices", "run", "--port", str(port),
            "--credentials-dir", str(creds_dir), *args]  # fmt: skip


class Simulator:
    """`python -m devices run` as a subprocess; its log is kept for failure messages."""

    def __init__(self, port: int, creds_dir: Path, log: Path, *args: str) -> None:
        self.log = log
        cmd = devices_command(port, creds_dir, "--status-every", "2", *args)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=clean_env(), stdout=out, stderr=subprocess.STDOUT
            )

    def wait(self, timeout: float) -> None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"simulator still running: {self.text()[-3000:]}") from None
        assert code == 0, self.text()[-3000:]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_child(self.proc, signal.SIGTERM, timeout=20)
