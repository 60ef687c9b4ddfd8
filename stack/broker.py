"""Starting the project's Mosquitto (with broker_config/) as a local process, or the fallback."""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stack.ports import wait_for_port

log = logging.getLogger(__name__)

BROKER_CONFIG_DIR = Path(__file__).resolve().parent.parent / "broker_config"


def render_config(
    *,
    port: int,
    passwd_file: Path,
    data_dir: Path,
    bind: str = "127.0.0.1",
    config_dir: Path = BROKER_CONFIG_DIR,
    overrides: dict[str, str] | None = None,
) -> str:
    """The shipped mosquitto.conf with only the port and file paths swapped for local ones
    (and, for tests that provoke a limit, explicit `overrides` of single options)."""
    replacements = {
        **{key: f"{key} {value}" for key, value in (overrides or {}).items()},
        "listener": f"listener {port} {bind}",
        "password_file": f"password_file {passwd_file}",
        "acl_file": f"acl_file {config_dir / 'acl'}",
        "persistence_location": f"persistence_location {data_dir}/",
    }
    out, seen = [], set()
    for line in (config_dir / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in replacements:
            out.append(replacements[key])
            seen.add(key)
        else:
            out.append(line)
    missing = set(replacements) - seen - set(overrides or {})
    if missing:
        raise ValueError(f"mosquitto.conf lacks {sorted(missing)}")
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to user `mosquitto`, which cannot write a persistence
        # folder made by root: it then silently persists nothing (docs/measured-facts.md). Local
        # runs keep the current user instead; the container image runs as `mosquitto` with its
        # own volume.
        out.append(f"user {getpass.getuser()}")
    return "\n".join(out) + "\n"


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if Path(candidate).exists():
            return candidate
    return None


@dataclass
class BrokerProcess:
    """A broker we started; we stop only this pid."""

    port: int
    workdir: Path
    passwd_file: Path
    embedded: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    def start(self) -> BrokerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / "data"
        data_dir.mkdir(exist_ok=True)
        binary = None if self.embedded else mosquitto_binary()
        if binary:
            self.conf_path.write_text(
                render_config(
                    port=self.port,
                    passwd_file=self.passwd_file,
                    data_dir=data_dir,
                    overrides=self.overrides,
                )
            )
            cmd = [binary, "-c", str(self.conf_path)]
        else:
            self.embedded = True
            cmd = [
                sys.executable,
                "-m",
                "stack.embedded_broker",
                "--port",
                str(self.port),
                "--passwd",
                str(self.passwd_file),
                "--acl",
                str(BROKER_CONFIG_DIR / "acl"),
            ]
        with self.log_path.open("ab") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"broker did not start; see {self.log_path}") from None
        log.info("broker %s on port %d (pid %d)", cmd[0], self.port, self.proc.pid)
        return self

    def send(self, sig: signal.Signals) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen broker cannot act on SIGTERM
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()
