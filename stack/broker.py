"""Starting the project's Mosquitto (with broker_config/) as a local process, or the fallback, and
writing the credentials both read (services' rights from broker_config/acl)."""

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

from adapters import credentials
from contracts.fleet import Fleet
from stack.acl import load_acl
from stack.ports import wait_for_port

log = logging.getLogger(__name__)

BROKER_CONFIG_DIR = Path(__file__).resolve().parent.parent / "broker_config"
ACL_FILE = BROKER_CONFIG_DIR / "acl"
PLUGIN_NAME = "mosquitto_dynamic_security.so"
# Where Mosquitto packages put the plugin: Debian's multiarch folder, the official image and
# source builds (`make install`).
PLUGIN_DIRS = (
    *sorted(Path("/usr/lib").glob("*-linux-gnu*")),
    Path("/usr/lib64"),
    Path("/usr/lib"),
    Path("/usr/local/lib"),
    Path("/usr/local/lib64"),
)


def generate_credentials(
    fleet: Fleet, out_dir: Path, *, keep_existing: bool = True
) -> credentials.Credentials:
    """Passwords for the fleet and the broker's dynamic-security.json, with the services' rights
    of broker_config/acl and each device's own (adapters.credentials)."""
    service_rules = load_acl(ACL_FILE).service_rules()
    return credentials.generate(
        fleet, out_dir, service_rules=service_rules, keep_existing=keep_existing
    )


def dynsec_plugin() -> Path | None:
    """This machine's dynamic security plugin, if Mosquitto's package installed one."""
    for folder in PLUGIN_DIRS:
        if (folder / PLUGIN_NAME).is_file():
            return folder / PLUGIN_NAME
    return None


def render_config(
    *,
    port: int,
    credentials_dir: Path,
    data_dir: Path,
    bind: str = "127.0.0.1",
    config_dir: Path = BROKER_CONFIG_DIR,
    overrides: dict[str, str] | None = None,
) -> str:
    """The shipped mosquitto.conf with only the port and file paths swapped for local ones
    (and, for tests that provoke a limit, explicit `overrides` of single options)."""
    plugin = dynsec_plugin()
    if plugin is None:
        raise RuntimeError(f"{PLUGIN_NAME} not found in {', '.join(map(str, PLUGIN_DIRS))}")
    replacements = {
        **{key: f"{key} {value}" for key, value in (overrides or {}).items()},
        "listener": f"listener {port} {bind}",
        "plugin": f"plugin {plugin}",
        "plugin_opt_config_file": (
            f"plugin_opt_config_file {credentials.broker_file(credentials_dir.resolve())}"
        ),
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
    """A broker we started; we stop only this pid. `credentials_dir` holds the
    dynamic-security.json that `generate_credentials` wrote."""

    port: int
    workdir: Path
    credentials_dir: Path
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
        broker_file = credentials.broker_file(self.credentials_dir)
        if not broker_file.is_file():
            raise FileNotFoundError(f"{broker_file} missing: generate the credentials first")
        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / "data"
        data_dir.mkdir(exist_ok=True)
        binary = None if self.embedded else mosquitto_binary()
        if binary:
            self.conf_path.write_text(
                render_config(
                    port=self.port,
                    credentials_dir=self.credentials_dir,
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
                "--credentials",
                str(broker_file),
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
